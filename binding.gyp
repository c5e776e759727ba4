{
  # `node-gyp rebuild` (run by `npm ci`/`npm install` because this file exists) builds both:
  #   build/bpf/*.bpf.o                     BPF objects, by scripts/build-bpf.sh (clang -target bpf)
  #   build/Release/quietflame_bpf.node     the N-API addon over the system libbpf (Debian libbpf-dev)
  "targets": [
    {
      "target_name": "bpf_objects",
      "type": "none",
      "actions": [
        {
          "action_name": "build_bpf",
          "inputs": [
            "scripts/build-bpf.sh",
            "<!@(ls bpf/*.bpf.c bpf/*.h 2>/dev/null)"
          ],
          "outputs": ["build/bpf/.stamp"],
          "action": ["bash", "scripts/build-bpf.sh", "--stamp"],
          "message": "Compiling BPF objects (scripts/build-bpf.sh)"
        }
      ]
    },
    {
      "target_name": "quietflame_bpf",
      "dependencies": [
        "bpf_objects",
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"
      ],
      "sources": [
        "native/addon.cc",
        "native/bpf_object.cc",
        "native/errors.cc",
        "native/huge_pages.cc",
        "native/inflater.cc",
        "native/open_in_root.cc",
        "native/process_memory.cc",
        "native/ring_buffer.cc",
        "native/sample_coalescer.cc",
        "native/util.cc"
      ],
      "defines": ["NAPI_VERSION=8"],
      "cflags_cc": ["-std=gnu++17", "-Wall", "-Wextra", "-Wno-missing-field-initializers", "-Wno-unused-parameter"],
      "libraries": ["-lbpf", "-lelf", "-lz"]
    }
  ]
}
