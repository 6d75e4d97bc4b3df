# CPack: a Debian package of the CLI and the workbench (`cpack -G DEB` in the build folder).
set(CPACK_PACKAGE_NAME "deltatune")
set(CPACK_PACKAGE_VENDOR "DeltaTune")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Workbench for delta tuning (parameter-efficient fine-tuning) of transformers")
set(CPACK_PACKAGE_CONTACT "DeltaTune developers")
set(CPACK_DEBIAN_PACKAGE_SECTION "science")
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libtorch1.13, libopenblas0-openmp, libqt6widgets6, qt6-qpa-plugins, libqt6svg6")
set(CPACK_GENERATOR "DEB")
include(CPack)
