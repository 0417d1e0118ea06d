// The skeleton of the inspect pages (apps/inspect_page.h): the page's start with its CSS, numbers
// as text, HTML escaping and pictures as base64 data: URIs. No knowledge of the network.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pneumo::cli {

std::string html_escape(const std::string& text);  // & < > " as entities

namespace page {

std::string number(double value, int digits = 4);        // %.<digits>g
std::string stat(const std::string& key, double value);  // <span data-stat="KEY">value</span>
std::string with_commas(int64_t value);                  // 1,234,567
std::string flops_text(int64_t flops);                   // "3.21 GFLOP"
std::string base64(const std::vector<uint8_t>& bytes);   // RFC 4648, padded
std::string png_uri(const std::vector<uint8_t>& png);    // "data:image/png;base64,..."
std::string img(const std::string& uri, int display_width, const std::string& alt, const std::string& css_class = "");
// "<!DOCTYPE html>...<style>CSS</style></head><body><main>": the start every page shares.
std::string page_start(const std::string& title);

}  // namespace page
}  // namespace pneumo::cli
