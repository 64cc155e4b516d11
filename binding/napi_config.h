// The one place that includes node-addon-api, so every source agrees on its configuration:
// C++ exceptions on (a thrown Napi::Error becomes a JS exception), N-API 8 (Node >= 12.22 / 14.17).
#pragma once

#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#ifndef NAPI_CPP_EXCEPTIONS
#define NAPI_CPP_EXCEPTIONS
#endif
#include <napi.h>
