// Network diagrams: the graph a Network builds (layers/network.h) drawn as standalone SVG files,
// from Network::nodes() and each node's inputs and output shape, so a page's figure cannot drift
// from the code (`pneumo summary --svg`, layers/figures/, tests/docs/test_network_figures.sh).
// Pure functions of the network: the same network gives the same bytes.
#pragma once
#include <string>

#include "layers/network.h"

namespace pneumo {

// The whole graph: one column per stage (the stem with depth 1, each further depth, the head),
// one box per node (name, kind with kernel size for convolutions, output H x W x C for one
// image), an arrow per input edge; an edge that skips nodes of its column (a residual block's
// skip path into its Add) is an arc on the column's right side, an edge into the next column a
// connector from the bottom of one column to the top of the next.
std::string draw_network_svg(const Network& network);

// One residual block drawn larger: its input, its nodes (bn1, relu1, conv1, bn2, relu2,
// [dropout,] conv2, add) with their shapes, and the skip path from the input to the add.
// `block` is a node-name prefix such as "block1_1"; pneumo::Error when the network has no such
// block (e.g. n_blocks = 0).
std::string draw_residual_block_svg(const Network& network, const std::string& block);

}  // namespace pneumo
