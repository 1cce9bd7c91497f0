// libmodeloptps_stdcxx_shim.so: provides std::ios_base_library_init() (GLIBCXX_3.4.32) for libstdc++ builds older
// than GCC 13, so that TorchSharp's libLibTorchSharp.so (built with GCC 13+) loads on them. TorchSharpNative.targets
// builds it and makes it a dependency of a patched copy of libLibTorchSharp.so, only where the system needs it.
//
// GCC 13+ moved the construction of std::cout & co. into libstdc++ itself; <iostream> then only references
// ios_base_library_init() so that a libstdc++ which does that is linked. With an older libstdc++, every user of
// <iostream> must hold a std::ios_base::Init object instead. This library holds one at namespace scope: as a
// dependency of libLibTorchSharp.so it is initialised first, so the streams are ready before that library's
// constructors run. (A function-local static would never be constructed: nothing calls the function.)
#include <ios>

namespace {
std::ios_base::Init streams_ready_for_libtorchsharp;
}

namespace std {
// Only ever referenced, never called (GCC 13's <iostream> emits a bare reference to pull in libstdc++'s initialiser).
void ios_base_library_init() {}
}
