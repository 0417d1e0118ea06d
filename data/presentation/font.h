// The embedded bitmap font used by Picture::draw_text (chart axes, titles, box confidences):
// printable ASCII, 5x9 glyphs (7 rows above the baseline, 2 for descenders) in a 6x10 cell.
#pragma once
#include <cstdint>

namespace pneumo {

constexpr int kGlyphWidth = 5;    // ink columns
constexpr int kGlyphHeight = 9;   // ink rows, descenders included
constexpr int kGlyphAdvance = 6;  // pen advance per character (one blank column)
constexpr int kLineHeight = 10;   // pen advance per line (one blank row)

// The 9 rows of `character`'s glyph; bit 4 is the leftmost column. Characters outside printable
// ASCII (32..126) get the glyph of '?'.
const uint8_t* glyph_rows(char character);

}  // namespace pneumo
