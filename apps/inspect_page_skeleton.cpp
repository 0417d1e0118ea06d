#include "apps/inspect_page_skeleton.h"

#include <cmath>
#include <cstdio>

#include "data/presentation/chart.h"

namespace pneumo::cli {

std::string html_escape(const std::string& text) { return xml_escape(text); }

namespace page {

namespace {

const char* kStyle = R"(
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;background:#f6f6f3;color:#1d1d1d;line-height:1.45}
main{max-width:1240px;margin:0 auto;padding:18px 28px 60px}
h1{font-size:28px;margin:10px 0 4px}h2{font-size:22px;margin:34px 0 6px;border-bottom:2px solid #ddd;padding-bottom:4px}
h3{font-size:18px;margin:0 0 4px}h4{font-size:13px;margin:6px 0 4px;color:#444;font-weight:600}
p.what{margin:2px 0 8px;color:#333;max-width:980px}
.note{background:#fffbe6;border:1px solid #eadc9a;padding:8px 12px;border-radius:6px;max-width:1040px}
table{border-collapse:collapse;font-size:13px;margin:4px 0}td,th{padding:2px 8px;border-bottom:1px solid #e3e3e3;text-align:right}
th{background:#eee;font-weight:600}td:first-child,th:first-child{text-align:left}
.flow{display:flex;flex-wrap:wrap;gap:6px 4px;align-items:stretch}
.card{display:block;width:128px;padding:5px 6px;border-radius:6px;background:#fff;border:1px solid #ccc;border-left:6px solid #999;
 font-size:11px;text-decoration:none;color:#222}
.card b{font-size:12px;display:block;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.card .time{height:4px;background:#e35d3a;margin-top:3px;border-radius:2px}
.arrow{align-self:center;color:#999;font-size:14px}
.k-Conv2d{border-left-color:#3a6fd8}.k-BatchNorm2d{border-left-color:#2aa876}.k-LeakyReLU{border-left-color:#e3a21a}
.k-MaxPool2d{border-left-color:#8e5ad6}.k-Add{border-left-color:#d6455d}.k-Sigmoid{border-left-color:#16a3b8}
.k-Upsample{border-left-color:#7a7a7a}.k-image{border-left-color:#000}.k-boxes{border-left-color:#ff8c00}
section.node{background:#fff;border:1px solid #ddd;border-radius:8px;padding:12px 16px;margin:14px 0}
.kind{font-weight:400;color:#666;font-size:14px;margin-left:6px}
.facts{font-size:13px;color:#444;margin-bottom:6px}
.row{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}
.panel{min-width:330px}
img.map{image-rendering:pixelated;display:block;border:1px solid #ccc;height:auto}
img.pic{display:block;border:1px solid #ccc;image-rendering:pixelated}
.scale{font-size:12px;display:flex;align-items:center;gap:6px;margin:2px 0 4px}
.bar{display:inline-block;width:120px;height:10px;border:1px solid #999}
.bar.grey{background:linear-gradient(to right,#000,#fff)}
.bar.signed{background:linear-gradient(to right,#2166ac,#fff,#b2182b)}
.bar.viridis{background:linear-gradient(to right,#440154,#3b528b,#21918c,#5ec962,#fde725)}
.code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;background:#f3f3f0;padding:6px 8px;border-radius:5px;margin-top:8px}
svg text.t{font-size:12px;font-weight:600;fill:#333}svg text.a{font-size:11px;fill:#444}
.pictures{display:flex;flex-wrap:wrap;gap:14px}.pictures figure{margin:0}.pictures figcaption{font-size:12px;color:#444;max-width:260px}
.big{font-size:20px;font-weight:600}
)";

}  // namespace

std::string number(double value, int digits) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*g", digits, value);
  return text;
}

// A number the tests read back: data-stat="key" with 9 significant digits; shown with 4.
std::string stat(const std::string& key, double value) {
  char exact[64];
  std::snprintf(exact, sizeof exact, "%.9g", value);
  return "<span data-stat=\"" + key + "\" data-value=\"" + exact + "\">" + number(value) + "</span>";
}

std::string with_commas(int64_t value) {
  std::string digits = std::to_string(value), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0 && digits[i - 1] != '-') out += ',';
    out += digits[i];
  }
  return out;
}

std::string flops_text(int64_t flops) {
  const double value = static_cast<double>(flops);
  if (value >= 1e9) return number(value * 1e-9, 3) + " GFLOP";
  if (value >= 1e6) return number(value * 1e-6, 3) + " MFLOP";
  return number(value * 1e-3, 3) + " kFLOP";
}
std::string base64(const std::vector<uint8_t>& bytes) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const uint32_t b0 = bytes[i], b1 = i + 1 < bytes.size() ? bytes[i + 1] : 0,
                   b2 = i + 2 < bytes.size() ? bytes[i + 2] : 0;
    const uint32_t triple = (b0 << 16) | (b1 << 8) | b2;
    out += alphabet[(triple >> 18) & 63];
    out += alphabet[(triple >> 12) & 63];
    out += i + 1 < bytes.size() ? alphabet[(triple >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? alphabet[triple & 63] : '=';
  }
  return out;
}

std::string png_uri(const std::vector<uint8_t>& png) { return "data:image/png;base64," + base64(png); }

std::string img(const std::string& uri, int display_width, const std::string& alt, const std::string& css_class) {
  return "<img class=\"" + css_class + "\" src=\"" + uri + "\" width=\"" + std::to_string(display_width) + "\" alt=\"" +
         html_escape(alt) + "\"/>";
}

std::string page_start(const std::string& title) {
  return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/><title>" + html_escape(title) +
         "</title><style>" + kStyle + "</style></head><body><main>\n";
}

}  // namespace page
}  // namespace pneumo::cli
