{
  "variables": {
    # A directory with lib/libbpf.a (built -fPIC) and include/bpf/: the prebuilt addon links
    # libbpf statically from there (scripts/prebuild.sh sets it). Unset: the system's -lbpf.
    "libbpf_dir%": "<!(node -p \"process.env.VITEST_CHAOS_LIBBPF_DIR || ''\")"
  },
  "targets": [
    {
      "target_name": "vitest_chaos",
      "sources": ["native/addon.cc", "native/packet-queue.cc", "native/netns-socket.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc!": ["-fno-exceptions"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "conditions": [
        ["libbpf_dir!=''", {
          "include_dirs": ["<(libbpf_dir)/include"],
          # Debian's libelf.a is not -fPIC: libelf.so.1 stays shared, and it needs libz.so.1 anyway.
          "libraries": ["<(libbpf_dir)/lib/libbpf.a", "-lelf", "-lz"],
          # No libstdc++ version requirement beyond the C library's; libbpf's symbols stay private.
          "ldflags": ["-static-libstdc++", "-static-libgcc", "-Wl,--exclude-libs,ALL"]
        }, {
          "libraries": ["-lbpf", "-lelf", "-lz"]
        }]
      ]
    }
  ]
}
