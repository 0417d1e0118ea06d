// Dataset directory layout: a dataset folder (the Kaggle download or a synthetic one) -> the paths
// of its label files and image folders, and the patient ids of the DICOMs in a folder.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pneumo {

struct DatasetLayout {
  std::string root;
  std::string train_labels;       // stage_2_train_labels.csv (or stage_1_...)
  std::string class_info;         // stage_2_detailed_class_info.csv; "" when absent
  std::string train_images;       // stage_2_train_images (or stage_1_...)
  std::string test_images;        // stage_2_test_images (or stage_1_...); "" when absent
  std::string sample_submission;  // stage_2_sample_submission.csv; "" when absent
  std::string test_labels;        // synthetic_test_labels.csv (synthetic data only); "" when absent
};

// Finds the files of a dataset folder, preferring stage 2 names over stage 1. Throws
// pneumo::Error naming the folder and the names looked for when the train labels or the train
// image folder are missing.
DatasetLayout find_dataset(const std::string& root);

// The patient ids (file names without ".dcm") of the DICOM files in `directory`, sorted.
// Throws pneumo::Error when the folder cannot be read.
std::vector<std::string> list_dicom_ids(const std::string& directory);

// directory + "/" + patient_id + ".dcm"
std::string dicom_path(const std::string& directory, const std::string& patient_id);

bool file_exists(const std::string& path);       // a regular file
bool directory_exists(const std::string& path);  // a directory

}  // namespace pneumo
