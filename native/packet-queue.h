// SPDX-License-Identifier: Apache-2.0
// The NFQUEUE reader (packet-queue.cc): exports.PacketQueue.
#pragma once
#include <napi.h>

void InitPacketQueue(Napi::Env env, Napi::Object exports);
