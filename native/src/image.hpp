// Image decoding (stb_image) and the plain-C++ pixel operations used by the data loaders
// (running them in loader threads without libtorch avoids oversubscribing its thread pool).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace smnas {

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // HWC, 3 channels
};

// Throws BadData naming the file on failure.
Image loadImage(const std::string& path);
// Width and height from the file's header (no decoding); throws BadData naming the file when unreadable.
void imageSize(const std::string& path, int& width, int& height);
// Bilinear resize (half-pixel centres, like align_corners=false).
Image resizeBilinear(const Image& in, int width, int height);
// Crop [x, x+w) x [y, y+h) then resize to outW x outH.
Image cropResize(const Image& in, int x, int y, int w, int h, int outW, int outH);
void flipHorizontal(Image& img);

}  // namespace smnas
