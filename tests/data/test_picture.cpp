// Picture drawing (clipping, rectangles, lines, text, grey images), PNG output read back with
// stb_image, the embedded font, and render_dicom on a fixture.
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include "data/presentation/font.h"
#include "data/presentation/picture.h"
#include "data/presentation/render.h"
#include "engine/check.h"
#include "tests/support/fixtures.h"
#include "tests/third_party/doctest/doctest.h"

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb_image.h>
#pragma GCC diagnostic pop

using pneumo::Color;
using pneumo::Picture;

namespace {

const Color kWhite{255, 255, 255}, kBlack{0, 0, 0}, kRed{255, 0, 0};

// The canvas as text: '#' where the pixel is `ink`, '.' elsewhere.
std::vector<std::string> as_text(const Picture& picture, Color ink) {
  std::vector<std::string> rows;
  for (int y = 0; y < picture.height(); ++y) {
    std::string row;
    for (int x = 0; x < picture.width(); ++x) row += picture.get(x, y) == ink ? '#' : '.';
    rows.push_back(row);
  }
  return rows;
}

int count_color(const Picture& picture, Color color) {
  int count = 0;
  for (int y = 0; y < picture.height(); ++y)
    for (int x = 0; x < picture.width(); ++x) count += picture.get(x, y) == color;
  return count;
}

std::string temp_path(const std::string& name) {
  return "/tmp/pneumo_test_picture_" + std::to_string(::getpid()) + "_" + name;
}

}  // namespace

TEST_CASE("set, get, background and clipping") {
  Picture picture(4, 3, {1, 2, 3});
  CHECK(picture.width() == 4);
  CHECK(picture.height() == 3);
  CHECK(picture.get(3, 2) == Color{1, 2, 3});
  picture.set(1, 2, kRed);
  picture.set(-1, 0, kRed);  // outside: ignored
  picture.set(4, 0, kRed);
  CHECK(picture.get(1, 2) == kRed);
  CHECK(count_color(picture, kRed) == 1);
  CHECK_THROWS_AS(picture.get(4, 0), pneumo::Error);
  CHECK_THROWS_AS(Picture(0, 5), pneumo::Error);
  picture.fill_rect(-10, -10, 12, 11, kWhite);  // covers x 0..1, y 0
  CHECK(as_text(picture, kWhite) == std::vector<std::string>{"##..", "....", "...."});
}

TEST_CASE("rectangles: outline drawn inwards with thickness") {
  Picture picture(7, 6, kBlack);
  picture.draw_rect(1, 1, 5, 4, kWhite);
  CHECK(as_text(picture, kWhite) ==
        std::vector<std::string>{".......", ".#####.", ".#...#.", ".#...#.", ".#####.", "......."});
  Picture thick(6, 6, kBlack);
  thick.draw_rect(0, 0, 6, 6, kWhite, 2);
  CHECK(as_text(thick, kWhite) == std::vector<std::string>{"######", "######", "##..##", "##..##", "######", "######"});
  Picture clipped(4, 4, kBlack);
  clipped.draw_rect(2, 2, 10, 10, kWhite);  // only the top and left edges are visible
  CHECK(as_text(clipped, kWhite) == std::vector<std::string>{"....", "....", "..##", "..#."});
}

TEST_CASE("lines: end points included, all octants, thickness") {
  Picture picture(5, 5, kBlack);
  picture.draw_line(0, 0, 4, 4, kWhite);
  CHECK(as_text(picture, kWhite) == std::vector<std::string>{"#....", ".#...", "..#..", "...#.", "....#"});
  Picture shallow(5, 3, kBlack);
  shallow.draw_line(4, 2, 0, 0, kWhite);  // reversed direction, slope 1/2
  CHECK(count_color(shallow, kWhite) == 5);
  CHECK(shallow.get(0, 0) == kWhite);
  CHECK(shallow.get(4, 2) == kWhite);
  CHECK(shallow.get(2, 1) == kWhite);
  Picture thick(5, 5, kBlack);
  thick.draw_line(1, 2, 3, 2, kWhite, 3);
  CHECK(as_text(thick, kWhite) == std::vector<std::string>{".....", "#####", "#####", "#####", "....."});
  Picture outside(3, 3, kBlack);
  outside.draw_line(-5, 1, 10, 1, kWhite);  // clipped, no crash
  CHECK(as_text(outside, kWhite) == std::vector<std::string>{"...", "###", "..."});
}

TEST_CASE("text: the glyph of 'A', scale, sizes, unknown characters") {
  Picture picture(12, 10, kBlack);
  picture.draw_text(0, 0, "A", kWhite);
  std::vector<std::string> text = as_text(picture, kWhite);
  const std::vector<std::string> expected_a = {".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"};
  for (int row = 0; row < 7; ++row) CHECK(text[row].substr(0, 5) == expected_a[row]);
  CHECK(count_color(picture, kWhite) == 18);
  CHECK(Picture::text_width("A") == 5);
  CHECK(Picture::text_width("AB") == 11);
  CHECK(Picture::text_width("AB\nABC", 2) == 2 * 17);
  CHECK(Picture::text_width("") == 0);
  CHECK(Picture::text_height() == 9);
  CHECK(Picture::text_height(3) == 27);

  Picture big(12, 20, kBlack);
  big.draw_text(0, 0, "A", kWhite, 2);
  CHECK(count_color(big, kWhite) == 4 * 18);
  CHECK(big.get(2, 0) == kWhite);  // top bar starts at column 1 -> pixels 2..3
  CHECK(big.get(1, 0) == kBlack);

  Picture unknown(6, 10, kBlack), question(6, 10, kBlack);
  unknown.draw_text(0, 0, "\x01", kWhite);
  question.draw_text(0, 0, "?", kWhite);
  CHECK(as_text(unknown, kWhite) == as_text(question, kWhite));
  Picture clipped(3, 3, kBlack);
  clipped.draw_text(-2, -2, "W@", kWhite, 3);  // partly outside: no crash
}

TEST_CASE("font: every printable character has ink in 5 columns, and all glyphs differ") {
  std::set<std::vector<uint8_t>> glyphs;
  for (int code = 33; code <= 126; ++code) {
    const uint8_t* rows = pneumo::glyph_rows(char(code));
    int ink = 0;
    for (int row = 0; row < pneumo::kGlyphHeight; ++row) {
      CHECK((rows[row] & ~0x1Fu) == 0);
      ink += rows[row] != 0;
    }
    INFO("character " << char(code));
    CHECK(ink > 0);
    glyphs.insert(std::vector<uint8_t>(rows, rows + pneumo::kGlyphHeight));
  }
  CHECK(glyphs.size() == 94);
  const uint8_t* space = pneumo::glyph_rows(' ');
  for (int row = 0; row < pneumo::kGlyphHeight; ++row) CHECK(space[row] == 0);
  // Descenders live in rows 7-8 for g, j, p, q, y only.
  for (int code = 33; code <= 126; ++code) {
    const uint8_t* rows = pneumo::glyph_rows(char(code));
    bool descends = rows[7] || rows[8];
    bool expected = std::string("gjpqy,").find(char(code)) != std::string::npos;
    INFO("character " << char(code));
    CHECK(descends == expected);
  }
}

TEST_CASE("grey images: nearest scaling, clamping, offset and clipping") {
  const float image[] = {0.0f, 1.0f, 0.5f, 2.0f};  // (2,2)
  Picture picture(5, 5, kRed);
  picture.draw_gray(image, 2, 2, 1, 1, 4, 4);
  CHECK(picture.get(0, 0) == kRed);
  CHECK(picture.get(1, 1) == Color{0, 0, 0});
  CHECK(picture.get(2, 2) == Color{0, 0, 0});
  CHECK(picture.get(3, 1) == Color{255, 255, 255});
  CHECK(picture.get(4, 2) == Color{255, 255, 255});
  CHECK(picture.get(1, 3) == Color{128, 128, 128});  // 0.5 * 255 rounded
  CHECK(picture.get(4, 4) == Color{255, 255, 255});  // 2.0 clamped
  // Shrinking 4 -> 2 samples the source pixel under each output centre: columns 1 and 3.
  const float ramp[] = {0.0f, 0.2f, 0.4f, 0.6f};  // (1,4)
  Picture small(2, 1, kRed);
  small.draw_gray(ramp, 1, 4, 0, 0, 2, 1);
  CHECK(small.get(0, 0) == Color{51, 51, 51});
  CHECK(small.get(1, 0) == Color{153, 153, 153});
  Picture clipped(2, 2, kRed);
  clipped.draw_gray(image, 2, 2, -1, -1, 2, 2);
  CHECK(clipped.get(0, 0) == Color{255, 255, 255});
  CHECK(clipped.get(1, 1) == kRed);
}

TEST_CASE("PNG: saved atomically and read back identically") {
  Picture picture(13, 7, {10, 20, 30});
  picture.draw_text(1, 0, "Hi", kRed);
  picture.set(12, 6, {1, 2, 250});
  std::string path = temp_path("out.png");
  picture.save_png(path);
  int width = 0, height = 0, channels = 0;
  unsigned char* data = stbi_load(path.c_str(), &width, &height, &channels, 3);
  REQUIRE(data != nullptr);
  CHECK(width == 13);
  CHECK(height == 7);
  CHECK(channels == 3);
  CHECK(std::vector<uint8_t>(data, data + 13 * 7 * 3) == picture.rgb());
  stbi_image_free(data);
  std::remove(path.c_str());
  CHECK_THROWS_WITH_AS(picture.save_png("/nonexistent-folder/x.png"),
                       doctest::Contains("/nonexistent-folder/x.png: cannot create the temporary file"), pneumo::Error);
}

TEST_CASE("render_dicom: image, label box and predicted box with its confidence") {
  std::string dicom = pneumo::testing::fixture_path("data/dicom/u8_explicit_le.dcm");  // 64x48
  std::string path = temp_path("render.png");
  pneumo::render_dicom(dicom, path, 0, {{4, 4, 20, 20}}, {{0.87f, {30, 20, 30, 25}}});
  int width = 0, height = 0, channels = 0;
  unsigned char* data = stbi_load(path.c_str(), &width, &height, &channels, 3);
  REQUIRE(data != nullptr);
  CHECK(width == 64);
  CHECK(height == 48);
  auto pixel = [&](int x, int y) {
    const unsigned char* p = data + (y * width + x) * 3;
    return Color{p[0], p[1], p[2]};
  };
  CHECK(pixel(4, 4) == pneumo::kLabelBoxColor);
  CHECK(pixel(23, 23) == pneumo::kLabelBoxColor);
  CHECK(pixel(59, 44) == pneumo::kPredictedBoxColor);  // bottom-right corner of the prediction
  // Untouched pixels are the grey image: stored value 7 at (1, 0) -> 7.
  CHECK(pixel(1, 0) == Color{7, 7, 7});
  stbi_image_free(data);

  // Scaled: longer side 128 -> 128 x 96, boxes scaled by 2.
  pneumo::Picture big = pneumo::render_image(pneumo::read_dicom(dicom), 128, {{4, 4, 20, 20}}, {});
  CHECK(big.width() == 128);
  CHECK(big.height() == 96);
  CHECK(big.get(8, 8) == pneumo::kLabelBoxColor);
  CHECK(big.get(47, 47) == pneumo::kLabelBoxColor);
  CHECK(big.get(48, 48) != pneumo::kLabelBoxColor);
  std::remove(path.c_str());
  CHECK_THROWS_AS(pneumo::render_dicom("/nonexistent.dcm", path, 0, {}, {}), pneumo::Error);
}
