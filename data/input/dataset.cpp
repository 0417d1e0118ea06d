// Dataset layout: stat() probes for the known Kaggle names; readdir() for the image lists.
#include "data/input/dataset.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <dirent.h>
#include <sys/stat.h>

#include "engine/check.h"

namespace pneumo {

bool file_exists(const std::string& path) {
  struct stat status;
  return ::stat(path.c_str(), &status) == 0 && S_ISREG(status.st_mode);
}

bool directory_exists(const std::string& path) {
  struct stat status;
  return ::stat(path.c_str(), &status) == 0 && S_ISDIR(status.st_mode);
}

namespace {

// The first of root/<name> that exists (file or folder as asked), or "".
std::string first_existing(const std::string& root, const std::vector<std::string>& names, bool directory) {
  for (const std::string& name : names) {
    std::string path = root + "/" + name;
    if (directory ? directory_exists(path) : file_exists(path)) return path;
  }
  return "";
}

std::string joined(const std::vector<std::string>& names) {
  std::string text;
  for (const std::string& name : names) text += (text.empty() ? "" : " or ") + name;
  return text;
}

}  // namespace

DatasetLayout find_dataset(const std::string& root) {
  if (!directory_exists(root)) throw Error(root + ": dataset folder not found");
  DatasetLayout layout;
  layout.root = root;
  const std::vector<std::string> label_names = {"stage_2_train_labels.csv", "stage_1_train_labels.csv"};
  const std::vector<std::string> train_names = {"stage_2_train_images", "stage_1_train_images"};
  layout.train_labels = first_existing(root, label_names, false);
  if (layout.train_labels.empty()) throw Error(root + ": no train labels (expected " + joined(label_names) + ")");
  layout.train_images = first_existing(root, train_names, true);
  if (layout.train_images.empty()) throw Error(root + ": no train image folder (expected " + joined(train_names) + ")");
  layout.class_info =
      first_existing(root, {"stage_2_detailed_class_info.csv", "stage_1_detailed_class_info.csv"}, false);
  layout.test_images = first_existing(root, {"stage_2_test_images", "stage_1_test_images"}, true);
  layout.sample_submission =
      first_existing(root, {"stage_2_sample_submission.csv", "stage_1_sample_submission.csv"}, false);
  layout.test_labels = first_existing(root, {"synthetic_test_labels.csv"}, false);
  return layout;
}

std::vector<std::string> list_dicom_ids(const std::string& directory) {
  DIR* folder = ::opendir(directory.c_str());
  if (folder == nullptr) throw Error(directory + ": cannot read image folder (" + std::strerror(errno) + ")");
  std::vector<std::string> ids;
  while (dirent* entry = ::readdir(folder)) {
    std::string name = entry->d_name;
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".dcm") == 0)
      ids.push_back(name.substr(0, name.size() - 4));
  }
  ::closedir(folder);
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::string dicom_path(const std::string& directory, const std::string& patient_id) {
  return directory + "/" + patient_id + ".dcm";
}

}  // namespace pneumo
