// The one place that includes node-addon-api, so every source agrees on its configuration:
// C++ exceptions on (a thrown Napi::Error becomes a JS exception), N-API 8 (Node >= 12.22 / 14.17).
#pragma once

#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#ifndef NAPI_CPP_EXCEPTIONS
#define NAPI_CPP_EXCEPTIONS
#endif
// Any C++ exception that still reaches node-addon-api's callback wrappers becomes a JS exception
// instead of terminating the process (our entry points convert NativeError with its code first).
#ifndef NODE_ADDON_API_CPP_EXCEPTIONS_ALL
#define NODE_ADDON_API_CPP_EXCEPTIONS_ALL
#endif
#include <napi.h>
