# Where each part is installed. Everything goes under CMAKE_INSTALL_PREFIX
# (GNUInstallDirs), the provider included: LIBDIR/ossl-modules, except for a
# /usr install, where it goes into OpenSSL's own modules directory so that
# `openssl -provider p11chat` finds it. -DP11CHAT_OSSL_MODULESDIR=DIR
# (absolute, or relative to the prefix) overrides both.
#
# Sets:
#   P11CHAT_MODULES_DESTINATION  install() destination of p11chat.so: relative
#                                to the prefix when under it, so that
#                                `cmake --install --prefix` and DESTDIR work
#   P11CHAT_OSSL_MODULESDIR      the same as an absolute path
#   P11CHAT_MODULES_FROM_BINDIR  the modules directory relative to BINDIR ("" when
#                                it is not under the prefix): the command finds
#                                its provider there after a move of the prefix

# STRING, not PATH: CMake would make a relative value given with -D absolute
# from the current directory; it is relative to the prefix.
set(P11CHAT_OSSL_MODULESDIR "" CACHE STRING
    "Where to install the provider p11chat.so (default: LIBDIR/ossl-modules under the prefix; OpenSSL's modules directory for /usr)")

set(_dir "${P11CHAT_OSSL_MODULESDIR}")
string(REGEX REPLACE "(.)/+$" "\\1" _prefix "${CMAKE_INSTALL_PREFIX}")
if(NOT _dir AND _prefix STREQUAL "/usr")
  execute_process(COMMAND ${PKG_CONFIG_EXECUTABLE} --variable=modulesdir libcrypto
                  OUTPUT_VARIABLE _dir OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(NOT _dir)
    find_program(P11CHAT_OPENSSL_EXECUTABLE openssl)
    if(P11CHAT_OPENSSL_EXECUTABLE)
      # MODULESDIR: "/usr/lib/x86_64-linux-gnu/ossl-modules"
      execute_process(COMMAND ${P11CHAT_OPENSSL_EXECUTABLE} version -m
                      OUTPUT_VARIABLE _out OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
      if(_out MATCHES "MODULESDIR: \"([^\"]+)\"")
        set(_dir "${CMAKE_MATCH_1}")
      endif()
    endif()
  endif()
endif()
if(NOT _dir)
  set(_dir "${CMAKE_INSTALL_LIBDIR}/ossl-modules")
endif()
if(NOT IS_ABSOLUTE "${_dir}")
  set(_dir "${CMAKE_INSTALL_PREFIX}/${_dir}")
endif()
cmake_path(NORMAL_PATH _dir)
string(REGEX REPLACE "/$" "" _dir "${_dir}")
set(P11CHAT_OSSL_MODULESDIR "${_dir}")

cmake_path(IS_PREFIX CMAKE_INSTALL_PREFIX "${_dir}" NORMALIZE _under_prefix)
if(_under_prefix AND NOT IS_ABSOLUTE "${CMAKE_INSTALL_BINDIR}")
  file(RELATIVE_PATH P11CHAT_MODULES_DESTINATION "${CMAKE_INSTALL_PREFIX}" "${_dir}")
  file(RELATIVE_PATH P11CHAT_MODULES_FROM_BINDIR "${CMAKE_INSTALL_FULL_BINDIR}" "${_dir}")
else()
  set(P11CHAT_MODULES_DESTINATION "${_dir}")
  set(P11CHAT_MODULES_FROM_BINDIR "")
endif()
message(STATUS "p11chat: the provider installs into ${P11CHAT_OSSL_MODULESDIR}")
unset(_dir)
unset(_prefix)
unset(_out)
unset(_under_prefix)
