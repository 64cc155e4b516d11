/** The live page served at GET / (a placeholder; the page itself comes with its own change). */
export const PAGE_HTML: string = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>deimv2 serve</title></head>
<body><h1>deimv2 serve</h1><p>Streams: <a href="/v1/streams">/v1/streams</a></p></body></html>
`;
