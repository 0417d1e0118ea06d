// Small file-system helpers shared by the atomic writers (checkpoints, image caches, submissions).
#pragma once
#include <string>

namespace pneumo {

// Removes the temporary files a killed writer left beside `final_path`: every entry of its folder
// named <file name of final_path><infix><pid>... whose process <pid> no longer exists (a live
// writer's file is left alone). Returns how many were removed; never throws.
int remove_stale_temporary_files(const std::string& final_path, const std::string& infix);

}  // namespace pneumo
