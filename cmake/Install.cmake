# What `cmake --install` puts where (directories: cmake/InstallDirs.cmake).
# Every destination is relative to the prefix unless the user made it
# absolute, so `cmake --install build --prefix DIR` and DESTDIR both work
# and nothing is written outside the prefix.
include(CMakePackageConfigHelpers)

set(P11CHAT_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/p11chat")

install(TARGETS p11chat_cmd RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS p11chat_provider LIBRARY DESTINATION ${P11CHAT_MODULES_DESTINATION})
install(TARGETS p11chat p11chat_static EXPORT p11chatTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES protocol/include/p11chat.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# find_package(p11chat): p11chat::p11chat (shared) and p11chat::p11chat_static.
install(EXPORT p11chatTargets NAMESPACE p11chat:: DESTINATION ${P11CHAT_CMAKEDIR})
configure_package_config_file(cmake/p11chatConfig.cmake.in
    ${CMAKE_CURRENT_BINARY_DIR}/p11chatConfig.cmake INSTALL_DESTINATION ${P11CHAT_CMAKEDIR})
# 0.x: a new minor version may change the interface.
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/p11chatConfigVersion.cmake
    COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/p11chatConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/p11chatConfigVersion.cmake
        DESTINATION ${P11CHAT_CMAKEDIR})

# libp11chat.pc, written at install time: its prefix is the one installed
# into (`--prefix` included), not the one configured.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(P11CHAT_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  set(P11CHAT_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(P11CHAT_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(P11CHAT_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
set(P11CHAT_PC_PREFIX "%P11CHAT_PREFIX%")
configure_file(cmake/libp11chat.pc.in ${CMAKE_CURRENT_BINARY_DIR}/libp11chat.pc.in @ONLY)
install(CODE "
  file(READ \"${CMAKE_CURRENT_BINARY_DIR}/libp11chat.pc.in\" _pc)
  string(REPLACE \"%P11CHAT_PREFIX%\" \"\${CMAKE_INSTALL_PREFIX}\" _pc \"\${_pc}\")
  file(WRITE \"${CMAKE_CURRENT_BINARY_DIR}/pc/libp11chat.pc\" \"\${_pc}\")
  file(INSTALL DESTINATION \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig\"
       TYPE FILE FILES \"${CMAKE_CURRENT_BINARY_DIR}/pc/libp11chat.pc\")
")

# Documentation: the guides, and the configuration as an example.
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR} FILES_MATCHING PATTERN "*.md")
install(DIRECTORY conf/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
