# CPack: a Debian package of the CLI and the workbench (`cpack -G DEB` in the build folder).
set(CPACK_PACKAGE_NAME "deltatune")
set(CPACK_PACKAGE_VENDOR "DeltaTune")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Workbench for delta tuning (parameter-efficient fine-tuning) of transformers")
set(CPACK_PACKAGE_CONTACT "DeltaTune developers")
set(CPACK_DEBIAN_PACKAGE_SECTION "science")
# Libraries the binaries link (LibTorch, Qt, QCustomPlot, ...) come from dpkg-shlibdeps; these are
# loaded at run time and no linker sees them: the BLAS LibTorch should use (27x faster than the
# reference one), Qt's platform plugins and its SVG icon loader.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libopenblas0-openmp, qt6-qpa-plugins, libqt6svg6")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "DeltaTune developers <deltatune@users.noreply.github.com>")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_PACKAGE_DESCRIPTION "DeltaTune trains parameter-efficient deltas (LoRA, adapters, BitFit,
prefix and prompt tuning, IA3 and more) on Hugging Face transformer folders,
in a desktop workbench with live curves and from the deltatune command, and
exports them in the format Hugging Face PEFT loads.")
set(CPACK_STRIP_FILES ON)
set(CPACK_GENERATOR "DEB")
include(CPack)
