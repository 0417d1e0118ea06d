// The network diagrams (data/presentation/network_diagram.h): one box per node, one arrow per
// input edge, the residual skip paths drawn as arcs, shapes per node, and the same bytes for the
// same network. The expected counts come from the architecture of layers/network.h written out
// here (per depth 4 down nodes, per block 7), not from the drawing code.
#include <string>

#include "data/presentation/network_diagram.h"
#include "engine/check.h"
#include "tests/third_party/doctest/doctest.h"

namespace {

size_t count(const std::string& text, const std::string& part) {
  size_t found = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++found;
  return found;
}

}  // namespace

TEST_CASE("the network diagram draws every node, every edge and every residual skip path") {
  // create_network(32, 4, n_blocks=2, depth=2): conv0, per depth 4 down nodes and 2 blocks of 7
  // nodes, the head's 5: 1 + 2 * (4 + 14) + 5 = 42 nodes; every node reads one input but the
  // adds, which read two: 42 + 4 edges; 4 blocks, so 4 skip paths.
  const pneumo::Network network(pneumo::Device::CPU, {32, 4, 2, 2, 0.0f, 0.0f}, 7);
  const std::string svg = pneumo::draw_network_svg(network);
  CHECK(svg.rfind("<?xml", 0) == 0);
  CHECK(svg.substr(svg.size() - 7) == "</svg>\n");
  CHECK(count(svg, "<g class=\"node\">") == 42 + 1);  // and the images
  CHECK(count(svg, "<path class=\"edge\"") + count(svg, "<path class=\"skip\"") == 46);
  CHECK(count(svg, "<path class=\"skip\"") == 4);
  CHECK(svg.find("<title>down1.pool -&gt; block1_1.add</title>") != std::string::npos);  // first skip
  CHECK(svg.find("<title>block2_1.add -&gt; block2_2.add</title>") != std::string::npos);
  CHECK(svg.find(">block2_2.conv1</text>") != std::string::npos);
  CHECK(svg.find(">Conv2d 3x3, 16-&gt;16</text>") != std::string::npos);  // depth 2: 4 * 2 * 2 channels
  CHECK(svg.find(">8x8x16</text>") != std::string::npos);                 // 32 / 2 / 2
  CHECK(svg.find(">32x32x1</text>") != std::string::npos);                // the upsampled output
  CHECK(pneumo::draw_network_svg(network) == svg);                        // deterministic
}

TEST_CASE("the residual block diagram shows the block's input, its nodes and its skip path") {
  const pneumo::Network network(pneumo::Device::CPU, {32, 4, 2, 2, 0.0f, 0.3f}, 7);  // with dropout
  const std::string svg = pneumo::draw_residual_block_svg(network, "block1_2");
  // The input box (block1_1.add) and bn1, relu1, conv1, bn2, relu2, dropout, conv2, add.
  CHECK(count(svg, "<g class=\"node\">") == 9);
  CHECK(svg.find(">block1_1.add</text>") != std::string::npos);
  CHECK(svg.find(">block1_2.dropout</text>") != std::string::npos);
  CHECK(count(svg, "<path class=\"skip\"") == 1);
  CHECK(svg.find("<title>block1_1.add -&gt; block1_2.add</title>") != std::string::npos);
  CHECK(count(svg, "<path class=\"edge\"") == 8);
  CHECK_THROWS_AS(pneumo::draw_residual_block_svg(network, "block3_1"), pneumo::Error);
  const pneumo::Network no_blocks(pneumo::Device::CPU, {32, 4, 0, 2, 0.0f, 0.0f}, 7);
  CHECK_THROWS_AS(pneumo::draw_residual_block_svg(no_blocks, "block1_1"), pneumo::Error);
}
