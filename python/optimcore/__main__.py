"""python -m optimcore --info: what this install is and runs on; --cmakedir | --includedir:
where C++ users point CMake (pybind11's way)."""

import argparse
import sys

import optimcore


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m optimcore")
    parser.add_argument("--info", action="store_true",
                        help="print the version, SIMD levels, OpenMP runtime and build flags")
    parser.add_argument("--version", action="version", version=optimcore.__version__)
    parser.add_argument("--cmakedir", action="store_true", help="print the CMake package dir")
    parser.add_argument("--includedir", action="store_true", help="print the header dir")
    parser.add_argument("--simd", action="store_true", help="print the active SIMD level")
    args = parser.parse_args()
    if args.info:
        optimcore.show_config()
    elif args.cmakedir:
        print(optimcore.get_cmake_dir())
    elif args.includedir:
        print(optimcore.get_include())
    elif args.simd:
        print(optimcore.simd_level())
    else:
        parser.print_help()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
