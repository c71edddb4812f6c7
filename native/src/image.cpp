#include "image.hpp"

#include <algorithm>
#include <cmath>

#include "protocol.hpp"

#ifdef SMNAS_STB_IMPLEMENTATION
#define STB_IMAGE_IMPLEMENTATION
#endif
#include <stb_image.h>

namespace smnas {

Image loadImage(const std::string& path) {
  int w = 0, h = 0, c = 0;
  unsigned char* data = stbi_load(path.c_str(), &w, &h, &c, 3);
  if (!data) throw BadData(path, "cannot decode image " + path + ": " + (stbi_failure_reason() ? stbi_failure_reason() : "unknown error"));
  Image img;
  img.width = w;
  img.height = h;
  img.rgb.assign(data, data + static_cast<size_t>(w) * h * 3);
  stbi_image_free(data);
  return img;
}

void imageSize(const std::string& path, int& width, int& height) {
  int c = 0;
  if (!stbi_info(path.c_str(), &width, &height, &c))
    throw BadData(path,
                  "cannot read the image header of " + path + ": " + (stbi_failure_reason() ? stbi_failure_reason() : "unknown error"));
}

Image cropResize(const Image& in, int x0, int y0, int cw, int ch, int outW, int outH) {
  Image out;
  out.width = outW;
  out.height = outH;
  out.rgb.resize(static_cast<size_t>(outW) * outH * 3);
  const float sx = static_cast<float>(cw) / outW, sy = static_cast<float>(ch) / outH;
  for (int y = 0; y < outH; ++y) {
    float fy = std::max(0.0f, (y + 0.5f) * sy - 0.5f);
    int iy = std::min(static_cast<int>(fy), ch - 1);
    int iy1 = std::min(iy + 1, ch - 1);
    float wy = fy - iy;
    const uint8_t* r0 = &in.rgb[(static_cast<size_t>(y0 + iy) * in.width) * 3];
    const uint8_t* r1 = &in.rgb[(static_cast<size_t>(y0 + iy1) * in.width) * 3];
    for (int x = 0; x < outW; ++x) {
      float fx = std::max(0.0f, (x + 0.5f) * sx - 0.5f);
      int ix = std::min(static_cast<int>(fx), cw - 1);
      int ix1 = std::min(ix + 1, cw - 1);
      float wx = fx - ix;
      int a = (x0 + ix) * 3, b = (x0 + ix1) * 3;
      for (int c = 0; c < 3; ++c) {
        float top = r0[a + c] * (1 - wx) + r0[b + c] * wx;
        float bot = r1[a + c] * (1 - wx) + r1[b + c] * wx;
        out.rgb[(static_cast<size_t>(y) * outW + x) * 3 + c] =
            static_cast<uint8_t>(std::lround(std::clamp(top * (1 - wy) + bot * wy, 0.0f, 255.0f)));
      }
    }
  }
  return out;
}

Image resizeBilinear(const Image& in, int width, int height) {
  if (width == in.width && height == in.height) return in;
  return cropResize(in, 0, 0, in.width, in.height, width, height);
}

void flipHorizontal(Image& img) {
  for (int y = 0; y < img.height; ++y) {
    uint8_t* row = &img.rgb[static_cast<size_t>(y) * img.width * 3];
    for (int x = 0, e = img.width - 1; x < e; ++x, --e)
      for (int c = 0; c < 3; ++c) std::swap(row[x * 3 + c], row[e * 3 + c]);
  }
}

}  // namespace smnas
