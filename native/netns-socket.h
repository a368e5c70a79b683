// SPDX-License-Identifier: Apache-2.0
// TCP sockets in a target's network namespace (netns-socket.cc).
#pragma once
#include <napi.h>

void InitNetnsSocket(Napi::Env env, Napi::Object exports);
