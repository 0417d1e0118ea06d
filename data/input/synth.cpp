// Synthetic chest X-rays: a plan (ids, classes, boxes, per-image seeds) drawn serially from the
// seed, then each image rendered from its own seed in parallel, so the output does not depend on
// the thread count. Rendering composes soft-edged shapes: body, lungs, heart, spine, clavicles,
// ribs, opacities, low-frequency texture, noise, then a per-image exposure curve.
#include "data/input/synth.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <unordered_set>

#include <signal.h>
#include <unistd.h>

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcostrmb.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmjpeg/djencode.h>
#include <dcmtk/dcmjpeg/djrploss.h>

#include "data/input/dicom.h"
#include "data/input/progress.h"
#include "engine/check.h"
#include "engine/cpu_threads.h"
#include "engine/files.h"
#include "engine/random.h"

namespace pneumo {

namespace {

// ---- random numbers: splitmix64 (engine/random.h), the same on every platform -------------------

class Random {
 public:
  explicit Random(uint64_t seed) : state_(mix64(seed)) {}
  uint64_t next() { return mix64(state_ += 0x9e3779b97f4a7c15ULL); }
  double uniform() { return (next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double uniform(double low, double high) { return low + (high - low) * uniform(); }
  int integer(int count) { return static_cast<int>(uniform() * count); }  // [0, count)
  double normal(double mean, double deviation) {                          // Box-Muller
    double u1 = std::max(uniform(), 1e-300), u2 = uniform();
    return mean + deviation * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  uint64_t state_;
};

float smoothstep(float edge0, float edge1, float x) {
  float t = std::clamp((x - edge0) / (edge1 - edge0), 0.0f, 1.0f);
  return t * t * (3.0f - 2.0f * t);
}

// ---- the plan ----------------------------------------------------------------------------

enum class Split { Train, Test };

struct Anatomy {
  float body_x, body_half_width, neck_half_width, shoulder_y;
  float spine_x;
  std::array<float, 2> lung_x, lung_half_width, lung_top, lung_bottom;  // [image-left, image-right]
  float heart_x, heart_y, heart_half_width, heart_half_height;
  float rib_top, rib_spacing, rib_curve;
  float clavicle_y;
  float background, tissue, lung, bone, haze;
  float contrast, brightness, gamma, noise;
};

struct ImagePlan {
  std::string patient_id;
  Split split;
  ImageClass image_class;
  uint64_t seed;
  std::string sex, view;
  int age;
};

std::string make_patient_id(Random& random) {
  uint64_t high = random.next(), low = random.next();
  high = (high & ~0xf000ULL) | 0x4000ULL;                       // version 4
  low = (low & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant 10xx
  char text[40];
  std::snprintf(text, sizeof(text), "%08llx-%04llx-%04llx-%04llx-%012llx", static_cast<unsigned long long>(high >> 32),
                static_cast<unsigned long long>((high >> 16) & 0xffff), static_cast<unsigned long long>(high & 0xffff),
                static_cast<unsigned long long>(low >> 48), static_cast<unsigned long long>(low & 0xffffffffffffULL));
  return text;
}

// Train images then test images. About 32% positive (exactly round(0.32 n) per split); negatives
// split ~43/57 between Normal and No Lung Opacity / Not Normal, as in stage 2.
std::vector<ImagePlan> plan_dataset(const SynthConfig& config) {
  Random random(config.seed ^ 0x5eed5eed5eedULL);
  std::vector<ImagePlan> plans;
  std::unordered_set<std::string> used;
  for (Split split : {Split::Train, Split::Test}) {
    const int count = split == Split::Train ? config.train_images : config.test_images;
    std::vector<int> order(count);
    for (int i = 0; i < count; ++i) order[i] = i;
    for (int i = count - 1; i > 0; --i) std::swap(order[i], order[random.integer(i + 1)]);
    const int positives = static_cast<int>(std::lround(0.32 * count));
    std::vector<bool> positive(count, false);
    for (int i = 0; i < positives; ++i) positive[order[i]] = true;
    for (int i = 0; i < count; ++i) {
      ImagePlan plan;
      do plan.patient_id = make_patient_id(random);
      while (!used.insert(plan.patient_id).second);
      plan.split = split;
      plan.image_class = positive[i]               ? ImageClass::LungOpacity
                         : random.uniform() < 0.43 ? ImageClass::Normal
                                                   : ImageClass::NoLungOpacityNotNormal;
      plan.seed = random.next();
      plan.sex = random.uniform() < 0.57 ? "M" : "F";
      plan.view = random.uniform() < 0.54 ? "PA" : "AP";
      plan.age = std::clamp(static_cast<int>(random.normal(47, 16)), 1, 92);
      plans.push_back(plan);
    }
  }
  return plans;
}

Anatomy make_anatomy(Random& random, int size) {
  const float s = static_cast<float>(size);
  Anatomy a;
  a.body_x = s * static_cast<float>(random.normal(0.5, 0.015));
  a.body_half_width = s * static_cast<float>(random.uniform(0.41, 0.47));
  a.neck_half_width = s * static_cast<float>(random.uniform(0.07, 0.09));
  a.shoulder_y = s * static_cast<float>(random.uniform(0.06, 0.12));
  a.spine_x = a.body_x + s * static_cast<float>(random.normal(0.0, 0.006));
  for (int side = 0; side < 2; ++side) {
    const float direction = side == 0 ? -1.0f : 1.0f;
    a.lung_half_width[side] = s * static_cast<float>(random.uniform(0.14, 0.17)) * (side == 1 ? 0.95f : 1.0f);
    a.lung_x[side] =
        a.spine_x + direction * (a.lung_half_width[side] + s * static_cast<float>(random.uniform(0.045, 0.065)));
    a.lung_top[side] = s * static_cast<float>(random.uniform(0.12, 0.18));
    // The right hemidiaphragm (image left) sits a little higher.
    a.lung_bottom[side] = s * static_cast<float>(random.uniform(0.74, 0.84) + (side == 1 ? 0.02 : 0.0));
  }
  a.heart_x = a.spine_x + s * static_cast<float>(random.uniform(0.04, 0.07));
  a.heart_y = s * static_cast<float>(random.uniform(0.58, 0.64));
  a.heart_half_width = s * static_cast<float>(random.uniform(0.11, 0.15));
  a.heart_half_height = s * static_cast<float>(random.uniform(0.11, 0.14));
  a.rib_top = s * static_cast<float>(random.uniform(0.1, 0.14));
  a.rib_spacing = s * static_cast<float>(random.uniform(0.055, 0.068));
  a.rib_curve = static_cast<float>(random.uniform(0.7, 1.1));
  a.clavicle_y = s * static_cast<float>(random.uniform(0.17, 0.21));
  a.background = static_cast<float>(random.uniform(0.02, 0.08));
  a.tissue = static_cast<float>(random.uniform(0.5, 0.62));
  a.lung = static_cast<float>(random.uniform(0.18, 0.28));
  a.bone = static_cast<float>(random.uniform(0.78, 0.88));
  a.haze = static_cast<float>(random.uniform(0.55, 0.7));
  a.contrast = static_cast<float>(random.uniform(0.8, 1.2));
  a.brightness = static_cast<float>(random.uniform(-0.07, 0.07));
  a.gamma = static_cast<float>(random.uniform(0.8, 1.25));
  a.noise = static_cast<float>(random.uniform(0.006, 0.012));
  return a;
}

bool boxes_overlap(const Box& a, const Box& b) {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

// 1-4 boxes (stage 2: 43% one, 54% two, 2% three, 0.2% four), sizes like the real boxes (in 1024
// pixels: width 40-528, mostly 150-350; height 45-942, mostly 200-500), centred in a lung.
std::vector<Box> make_boxes(Random& random, const Anatomy& a, int size) {
  const double draw = random.uniform();
  const int count = draw < 0.435 ? 1 : draw < 0.978 ? 2 : draw < 0.998 ? 3 : 4;
  const double scale = size / 1024.0;
  std::vector<Box> boxes;
  const int first_side = random.integer(2);
  for (int b = 0; b < count; ++b) {
    int side = (b == 1 && random.uniform() < 0.85) ? 1 - first_side : (b == 0 ? first_side : random.integer(2));
    for (int attempt = 0; attempt < 40; ++attempt) {
      double width =
          random.uniform() < 0.04 ? random.uniform(40, 130) : std::clamp(random.normal(240, 60), 90.0, 480.0);
      double height =
          random.uniform() < 0.04 ? random.uniform(45, 150) : std::clamp(random.normal(330, 110), 110.0, 800.0);
      if (random.uniform() < 0.01) height = random.uniform(800, 942);
      if (count > 2) height = std::max(45.0, height * 0.6);  // several boxes share a lung: smaller
      width *= scale;
      height *= scale;
      const double lung_height = a.lung_bottom[side] - a.lung_top[side];
      double center_x = a.lung_x[side] + random.normal(0.0, 0.2) * a.lung_half_width[side];
      double center_y = a.lung_top[side] + lung_height * random.uniform(0.3, 0.78);
      Box box;
      box.width = std::max(1, static_cast<int>(std::lround(width)));
      box.height = std::max(1, static_cast<int>(std::lround(height)));
      box.width = std::min(box.width, size);
      box.height = std::min(box.height, size);
      box.x = std::clamp(static_cast<int>(std::lround(center_x - width / 2)), 0, size - box.width);
      box.y = std::clamp(static_cast<int>(std::lround(center_y - height / 2)), 0, size - box.height);
      bool overlapping = false;
      for (const Box& other : boxes) overlapping = overlapping || boxes_overlap(box, other);
      if (!overlapping) {
        boxes.push_back(box);
        break;
      }
      side = random.integer(2);
    }
  }
  return boxes;
}

// Smooth noise: bilinear interpolation of a (cells+1)^2 grid of uniform values in [0, 1].
class ValueNoise {
 public:
  ValueNoise(Random& random, int cells, int size) : cells_(cells), step_(static_cast<float>(cells) / size) {
    values_.resize(static_cast<size_t>(cells + 1) * (cells + 1));
    for (float& value : values_) value = static_cast<float>(random.uniform());
  }
  float at(float x, float y) const {
    float gx = x * step_, gy = y * step_;
    int ix = std::min(static_cast<int>(gx), cells_ - 1), iy = std::min(static_cast<int>(gy), cells_ - 1);
    float fx = gx - ix, fy = gy - iy;
    const float* row = &values_[static_cast<size_t>(iy) * (cells_ + 1) + ix];
    const float* next = row + cells_ + 1;
    return (row[0] * (1 - fx) + row[1] * fx) * (1 - fy) + (next[0] * (1 - fx) + next[1] * fx) * fy;
  }

 private:
  int cells_;
  float step_;
  std::vector<float> values_;  // (cells+1, cells+1)
};

struct Rendered {
  std::vector<Box> boxes;
  std::vector<uint8_t> pixels;  // (S,S)
};

Rendered render(uint64_t seed, bool positive, int size) {
  Random random(seed);
  const Anatomy a = make_anatomy(random, size);
  Rendered out;
  if (positive) out.boxes = make_boxes(random, a, size);
  const ValueNoise coarse(random, 6, size), fine(random, 24, size), haze_texture(random, 14, size);
  struct Opacity {
    Box box;
    float strength;
  };
  std::vector<Opacity> opacities;
  for (const Box& box : out.boxes) opacities.push_back({box, static_cast<float>(random.uniform(0.6, 0.9))});
  const uint64_t noise_seed = random.next();

  const float s = static_cast<float>(size);
  // The anatomy is smooth, so it is evaluated on a half-resolution field (pixel centres mapped to
  // full-resolution coordinates) and upsampled bilinearly; noise is added at full resolution.
  const int factor = size >= 256 ? 2 : 1;
  const int field_size = (size + factor - 1) / factor;
  auto full_coordinate = [&](int field_index) { return (field_index + 0.5f) * factor - 0.5f; };
  std::vector<float> field(static_cast<size_t>(field_size) * field_size);  // (S/f,S/f)
  for (int y = 0; y < field_size; ++y) {
    const float fy = full_coordinate(y);
    // Body half-width for this row: neck at the top widening over the shoulders.
    const float shoulder = smoothstep(0.0f, a.shoulder_y + 0.05f * s, fy);
    const float half_width = a.neck_half_width + (a.body_half_width - a.neck_half_width) * shoulder;
    const float body_edge = 0.02f * s;
    // Lungs: per-row half-width of an ellipse, narrower near the apex.
    float lung_row_half[2], lung_row_weight[2];
    for (int side = 0; side < 2; ++side) {
      const float center = 0.5f * (a.lung_top[side] + a.lung_bottom[side]);
      const float half_height = 0.5f * (a.lung_bottom[side] - a.lung_top[side]);
      const float v = (fy - center) / half_height;
      const float taper = 0.7f + 0.3f * smoothstep(a.lung_top[side], a.lung_top[side] + 0.35f * s, fy);
      lung_row_half[side] = a.lung_half_width[side] * taper;
      lung_row_weight[side] = v * v;
    }
    const float heart_v = (fy - a.heart_y) / a.heart_half_height;
    const float tissue = a.tissue + 0.12f * smoothstep(0.55f * s, 0.95f * s, fy);
    const float vertebra = 0.5f + 0.5f * std::cos(fy / (0.035f * s) * 6.2831853f);
    for (int x = 0; x < field_size; ++x) {
      const float fx = full_coordinate(x);
      const float dx = fx - a.body_x;
      const float body = 1.0f - smoothstep(half_width - body_edge, half_width + body_edge, std::fabs(dx));
      float value = a.background + (tissue - a.background) * body;
      // Lungs, minus the heart shadow.
      float lung = 0.0f, hilum = 0.0f;
      for (int side = 0; side < 2; ++side) {
        const float u = (fx - a.lung_x[side]) / lung_row_half[side];
        const float d = u * u + lung_row_weight[side];
        lung = std::max(lung, 1.0f - smoothstep(0.6f, 1.05f, d));
        hilum = std::max(hilum, 1.0f - smoothstep(0.0f, 1.0f, std::fabs(u + (side == 0 ? -0.9f : 0.9f))));
      }
      const float heart_u = (fx - a.heart_x) / a.heart_half_width;
      const float heart = 1.0f - smoothstep(0.55f, 1.15f, heart_u * heart_u + heart_v * heart_v);
      lung *= (1.0f - heart) * body;
      const float lung_value = a.lung + 0.08f * (coarse.at(fx, fy) - 0.5f) +
                               (0.04f + 0.08f * hilum) * (fine.at(fx, fy) - 0.5f) + 0.1f * hilum * hilum;
      value += (lung_value - value) * lung;
      // Ribs: parallel arcs falling away from the spine.
      const float spine_distance = std::fabs(fx - a.spine_x);
      const float rib_phase = (fy - a.rib_top - a.rib_curve * spine_distance * spine_distance / s) / a.rib_spacing;
      if (rib_phase > 0.0f && rib_phase < 10.0f && spine_distance > 0.03f * s) {
        const float p = rib_phase - std::floor(rib_phase);
        const float rib = smoothstep(0.0f, 0.12f, p) * (1.0f - smoothstep(0.3f, 0.42f, p));
        value += rib * (0.025f + 0.09f * lung) * body * (1.0f - heart);
      }
      // Clavicles: rising outward from the top of the sternum.
      const float clavicle_center = a.clavicle_y - 0.12f * spine_distance;
      const float clavicle = (1.0f - smoothstep(0.008f * s, 0.018f * s, std::fabs(fy - clavicle_center))) *
                             (1.0f - smoothstep(0.26f * s, 0.3f * s, spine_distance)) *
                             smoothstep(0.02f * s, 0.05f * s, spine_distance);
      value += (a.bone - value) * 0.6f * clavicle * body;
      // Mediastinum and spine.
      const float mediastinum = (1.0f - smoothstep(0.045f * s, 0.07f * s, spine_distance)) * body;
      value += (a.tissue + 0.12f - value) * mediastinum * (1.0f - lung);
      const float spine = (1.0f - smoothstep(0.02f * s, 0.04f * s, spine_distance)) * body;
      value += (a.bone * (0.95f + 0.05f * vertebra) - value) * 0.5f * spine;
      value += (tissue + 0.1f - value) * 0.7f * heart * body;
      field[static_cast<size_t>(y) * field_size + x] = value;
    }
  }
  // Opacities: a soft squircle filling most of each box, blended toward the haze level.
  for (const Opacity& opacity : opacities) {
    const Box& box = opacity.box;
    const float center_x = box.x + 0.5f * box.width, center_y = box.y + 0.5f * box.height;
    // Field pixels whose centres fall inside the box.
    auto first_inside = [&](float edge) {
      return std::clamp(static_cast<int>(std::ceil((edge + 0.5f) / factor - 0.5f)), 0, field_size);
    };
    for (int y = first_inside(static_cast<float>(box.y)); y < first_inside(static_cast<float>(box.y + box.height));
         ++y) {
      const float fy = full_coordinate(y);
      const float v = (fy + 0.5f - center_y) / (0.5f * box.height);
      const float v4 = v * v * v * v;
      for (int x = first_inside(static_cast<float>(box.x)); x < first_inside(static_cast<float>(box.x + box.width));
           ++x) {
        const float fx = full_coordinate(x);
        const float u = (fx + 0.5f - center_x) / (0.5f * box.width);
        const float texture = haze_texture.at(fx, fy);
        const float r = (u * u * u * u + v4) * (0.85f + 0.3f * texture);
        const float blob = 1.0f - smoothstep(0.35f, 1.0f, r);
        float& value = field[static_cast<size_t>(y) * field_size + x];
        value += (a.haze * (0.85f + 0.3f * texture) - value) * opacity.strength * blob;
      }
    }
  }
  std::vector<float> image(static_cast<size_t>(size) * size);  // (S,S)
  if (factor == 1) {
    image = field;
  } else {
    // Source index and weight per output coordinate (the same table serves rows and columns).
    std::vector<int> source(size);
    std::vector<float> weight(size);
    for (int i = 0; i < size; ++i) {
      const float g = std::clamp((i + 0.5f) / factor - 0.5f, 0.0f, field_size - 1.0f);
      source[i] = std::min(static_cast<int>(g), field_size - 2);
      weight[i] = g - source[i];
    }
    for (int y = 0; y < size; ++y) {
      const float wy = weight[y];
      const float* row0 = &field[static_cast<size_t>(source[y]) * field_size];
      const float* row1 = row0 + field_size;
      float* out_row = &image[static_cast<size_t>(y) * size];
      for (int x = 0; x < size; ++x) {
        const int x0 = source[x];
        const float wx = weight[x];
        const float top = row0[x0] + (row0[x0 + 1] - row0[x0]) * wx;
        const float bottom = row1[x0] + (row1[x0 + 1] - row1[x0]) * wx;
        out_row[x] = top + (bottom - top) * wy;
      }
    }
  }
  // Exposure curve (contrast, brightness, gamma) as a table over 4096 levels, plus noise.
  std::array<uint8_t, 4096> curve;
  for (int level = 0; level < 4096; ++level) {
    float v = (level / 4095.0f - 0.5f) * a.contrast + 0.5f + a.brightness;
    v = std::pow(std::clamp(v, 0.0f, 1.0f), a.gamma);
    curve[level] = static_cast<uint8_t>(std::lround(v * 255.0f));
  }
  out.pixels.resize(image.size());
  uint64_t state = noise_seed;
  for (size_t i = 0; i < image.size(); ++i) {
    // Approximately normal noise: sum of four uniforms (two 16-bit pairs of one 64-bit draw).
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    const uint64_t bits = state ^ (state >> 29);
    const float sum = static_cast<float>((bits & 0xffff) + ((bits >> 16) & 0xffff) + ((bits >> 32) & 0xffff) +
                                         ((bits >> 48) & 0xffff)) /
                      65535.0f;                        // mean 2, variance 4/12
    const float gaussian = (sum - 2.0f) * 1.7320508f;  // unit variance
    const float value = image[i] + a.noise * gaussian;
    out.pixels[i] = curve[std::clamp(static_cast<int>(value * 4095.0f + 0.5f), 0, 4095)];
  }
  return out;
}

// ---- files -------------------------------------------------------------------------------

void register_encoder() {
  static std::once_flag once;
  std::call_once(once, [] {
    register_dicom_decoders();
    // EUC_never: keep our SOP Instance UID (the default makes a new, time-based one for lossy
    // output, which would break reproducibility).
    DJEncoderRegistration::registerCodecs(ECC_lossyYCbCr, EUC_never);
  });
}

std::string uid(const char* kind, uint64_t value) {
  // DCMTK's root for "site" UIDs; the rest is derived from the image seed.
  return std::string(SITE_INSTANCE_UID_ROOT) + "." + kind + "." + std::to_string(value % 1000000000000ULL);
}

void check(const OFCondition& status, const std::string& path, const char* what) {
  if (status.bad()) throw Error(path + ": " + what + " failed (" + status.text() + ")");
}

void write_dicom(const std::string& path, const ImagePlan& plan, const std::vector<uint8_t>& pixels, int size) {
  DcmFileFormat file;
  DcmDataset* dataset = file.getDataset();
  const std::string study = std::to_string(plan.seed % 100000);
  check(dataset->putAndInsertString(DCM_SpecificCharacterSet, "ISO_IR 100"), path, "SpecificCharacterSet");
  check(dataset->putAndInsertString(DCM_SOPClassUID, UID_SecondaryCaptureImageStorage), path, "SOPClassUID");
  check(dataset->putAndInsertString(DCM_SOPInstanceUID, uid("1", plan.seed).c_str()), path, "SOPInstanceUID");
  check(dataset->putAndInsertString(DCM_StudyDate, "19010101"), path, "StudyDate");
  check(dataset->putAndInsertString(DCM_StudyTime, "000000.00"), path, "StudyTime");
  check(dataset->putAndInsertString(DCM_AccessionNumber, ""), path, "AccessionNumber");
  check(dataset->putAndInsertString(DCM_Modality, "CR"), path, "Modality");
  check(dataset->putAndInsertString(DCM_ConversionType, "WSD"), path, "ConversionType");
  check(dataset->putAndInsertString(DCM_ReferringPhysicianName, ""), path, "ReferringPhysicianName");
  check(dataset->putAndInsertString(DCM_SeriesDescription, ("view: " + plan.view).c_str()), path, "SeriesDescription");
  check(dataset->putAndInsertString(DCM_PatientName, plan.patient_id.c_str()), path, "PatientName");
  check(dataset->putAndInsertString(DCM_PatientID, plan.patient_id.c_str()), path, "PatientID");
  check(dataset->putAndInsertString(DCM_PatientBirthDate, ""), path, "PatientBirthDate");
  check(dataset->putAndInsertString(DCM_PatientSex, plan.sex.c_str()), path, "PatientSex");
  check(dataset->putAndInsertString(DCM_PatientAge, std::to_string(plan.age).c_str()), path, "PatientAge");
  check(dataset->putAndInsertString(DCM_BodyPartExamined, "CHEST"), path, "BodyPartExamined");
  check(dataset->putAndInsertString(DCM_ViewPosition, plan.view.c_str()), path, "ViewPosition");
  check(dataset->putAndInsertString(DCM_StudyInstanceUID, uid("2", plan.seed).c_str()), path, "StudyInstanceUID");
  check(dataset->putAndInsertString(DCM_SeriesInstanceUID, uid("3", plan.seed).c_str()), path, "SeriesInstanceUID");
  check(dataset->putAndInsertString(DCM_StudyID, ""), path, "StudyID");
  check(dataset->putAndInsertString(DCM_SeriesNumber, "1"), path, "SeriesNumber");
  check(dataset->putAndInsertString(DCM_InstanceNumber, "1"), path, "InstanceNumber");
  check(dataset->putAndInsertString(DCM_PatientOrientation, ""), path, "PatientOrientation");
  check(dataset->putAndInsertUint16(DCM_SamplesPerPixel, 1), path, "SamplesPerPixel");
  check(dataset->putAndInsertString(DCM_PhotometricInterpretation, "MONOCHROME2"), path, "PhotometricInterpretation");
  check(dataset->putAndInsertUint16(DCM_Rows, static_cast<Uint16>(size)), path, "Rows");
  check(dataset->putAndInsertUint16(DCM_Columns, static_cast<Uint16>(size)), path, "Columns");
  const std::string spacing = std::to_string(0.14 * 1024.0 / size);
  check(dataset->putAndInsertString(DCM_PixelSpacing, (spacing + "\\" + spacing).c_str()), path, "PixelSpacing");
  check(dataset->putAndInsertUint16(DCM_BitsAllocated, 8), path, "BitsAllocated");
  check(dataset->putAndInsertUint16(DCM_BitsStored, 8), path, "BitsStored");
  check(dataset->putAndInsertUint16(DCM_HighBit, 7), path, "HighBit");
  check(dataset->putAndInsertUint16(DCM_PixelRepresentation, 0), path, "PixelRepresentation");
  check(dataset->putAndInsertUint8Array(DCM_PixelData, pixels.data(), static_cast<unsigned long>(pixels.size())), path,
        "PixelData");
  DJ_RPLossy parameters(90);  // JPEG quality 90
  check(dataset->chooseRepresentation(EXS_JPEGProcess1, &parameters), path, "JPEG baseline encoding");
  if (!dataset->canWriteXfer(EXS_JPEGProcess1))
    throw Error(path + ": JPEG baseline encoding is not available in this DCMTK build");
  // Encoded in memory (as saveFile would write it), then written with engine/files.h.
  std::string bytes;
  std::vector<char> chunk(1 << 16);
  DcmOutputBufferStream stream(chunk.data(), static_cast<offile_off_t>(chunk.size()));
  file.transferInit();
  OFCondition status = EC_StreamNotifyClient;
  while (status == EC_StreamNotifyClient) {
    status = file.write(stream, EXS_JPEGProcess1, EET_UndefinedLength, nullptr, EGL_recalcGL);
    if (status.good()) stream.flush();
    void* data = nullptr;
    offile_off_t length = 0;
    stream.flushBuffer(data, length);
    bytes.append(static_cast<const char*>(data), static_cast<size_t>(length));
  }
  file.transferEnd();
  check(status, path, "DICOM encoding");
  write_file_atomic(path, bytes);
}

std::string whole_float(int value) { return std::to_string(value) + ".0"; }

// The dataset is written into "<out>.partial-<pid>" beside --out and renamed into place at the
// end, so a killed synth never leaves a folder that mixes old and new files.
const char* const kPartialInfix = ".partial-";

// Removes "<out>.partial-<pid>" folders of synth runs that were killed (their pid is gone).
void remove_stale_partial_folders(const std::string& out) {
  namespace fs = std::filesystem;
  const std::string prefix = fs::path(out).filename().string() + kPartialInfix;
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(folder_of(out), error)) {
    const std::string name = entry.path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    char* end = nullptr;
    const long pid = std::strtol(name.c_str() + prefix.size(), &end, 10);
    if (*end != '\0' || pid <= 0 || pid == static_cast<long>(::getpid())) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // a live writer's
    std::error_code ignored;
    fs::remove_all(entry.path(), ignored);
  }
}

// Refuses an --out that holds anything: replacing a dataset file by file is what left old label
// CSVs beside new images of another size.
void require_empty_or_missing(const std::string& out) {
  namespace fs = std::filesystem;
  std::error_code error;
  const fs::file_status status = fs::symlink_status(out, error);
  if (!fs::exists(status)) return;
  if (!fs::is_directory(status))
    throw Error(quoted(out, 200) + ": exists and is not a folder; synth writes a dataset into a new or empty folder");
  if (!fs::is_empty(out, error) || error)
    throw Error(quoted(out, 200) +
                ": exists and is not empty; synth writes a dataset only into a new or empty folder "
                "(choose another --out or remove this one first)");
}

void write_dataset_files(const SynthConfig& config, const std::string& out_dir) {
  register_encoder();
  const std::vector<ImagePlan> plans = plan_dataset(config);
  const std::string train_dir = out_dir + "/stage_2_train_images";
  const std::string test_dir = out_dir + "/stage_2_test_images";
  make_directories(train_dir);
  make_directories(test_dir);

  std::vector<std::vector<Box>> boxes(plans.size());
  ProgressBar progress("synth", static_cast<int64_t>(plans.size()), config.show_progress ? stderr : nullptr);
  parallel_for(static_cast<int64_t>(plans.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const ImagePlan& plan = plans[i];
      Rendered rendered = render(plan.seed, plan.image_class == ImageClass::LungOpacity, config.image_size);
      const std::string& dir = plan.split == Split::Train ? train_dir : test_dir;
      write_dicom(dir + "/" + plan.patient_id + ".dcm", plan, rendered.pixels, config.image_size);
      boxes[i] = std::move(rendered.boxes);
      progress.advance();
    }
  });
  progress.finish();

  const std::string label_header = "patientId,x,y,width,height,Target\n";
  std::string train_labels = label_header, test_labels = label_header;
  std::string classes = "patientId,class\n";
  std::string submission = "patientId,PredictionString\n";
  for (size_t i = 0; i < plans.size(); ++i) {
    const ImagePlan& plan = plans[i];
    std::string rows;
    if (boxes[i].empty()) {
      rows = plan.patient_id + ",,,,,0\n";
    } else {
      for (const Box& box : boxes[i])
        rows += plan.patient_id + "," + whole_float(box.x) + "," + whole_float(box.y) + "," + whole_float(box.width) +
                "," + whole_float(box.height) + ",1\n";
    }
    if (plan.split == Split::Train) {
      train_labels += rows;
      const size_t row_count = std::max<size_t>(1, boxes[i].size());
      for (size_t r = 0; r < row_count; ++r)
        classes += plan.patient_id + "," + image_class_name(plan.image_class) + "\n";
    } else {
      test_labels += rows;
      submission += plan.patient_id + ",0.5 0 0 100 100\n";
    }
  }
  write_file_atomic(out_dir + "/stage_2_train_labels.csv", train_labels);
  write_file_atomic(out_dir + "/stage_2_detailed_class_info.csv", classes);
  write_file_atomic(out_dir + "/stage_2_sample_submission.csv", submission);
  write_file_atomic(out_dir + "/synthetic_test_labels.csv", test_labels);
}

}  // namespace

SynthImage render_synthetic_image(const SynthConfig& config, int index) {
  PNEUMO_REQUIRE(config.image_size >= 32 && config.image_size <= 4096, "image_size must be in [32, 4096]");
  std::vector<ImagePlan> plans = plan_dataset(config);
  PNEUMO_REQUIRE(index >= 0 && index < static_cast<int>(plans.size()), "image index out of range");
  const ImagePlan& plan = plans[index];
  Rendered rendered = render(plan.seed, plan.image_class == ImageClass::LungOpacity, config.image_size);
  return SynthImage{plan.patient_id, std::move(rendered.boxes), std::move(rendered.pixels)};
}

void write_synthetic_dataset(const SynthConfig& config) {
  if (config.image_size < 32 || config.image_size > 4096)
    throw Error("synthetic data: image_size must be in [32, 4096], got " + std::to_string(config.image_size));
  if (config.train_images < 0 || config.test_images < 0)
    throw Error("synthetic data: image counts must not be negative");
  std::string out = config.out_dir;
  while (out.size() > 1 && out.back() == '/') out.pop_back();  // "data/" names the folder "data"
  if (out.empty()) throw Error("synthetic data: the output folder is empty");
  require_empty_or_missing(out);
  make_directories(folder_of(out));
  remove_stale_partial_folders(out);
  const std::string partial = out + kPartialInfix + std::to_string(::getpid());
  std::error_code ignored;
  std::filesystem::remove_all(partial, ignored);
  try {
    write_dataset_files(config, partial);
    // rename() replaces an empty folder; a folder filled meanwhile by another writer is an error.
    if (std::rename(partial.c_str(), out.c_str()) != 0)
      throw Error(quoted(out, 200) + ": cannot move the finished dataset into place from " + quoted(partial, 200) +
                  " (" + std::strerror(errno) + ")");
  } catch (...) {
    std::filesystem::remove_all(partial, ignored);
    throw;
  }
}

}  // namespace pneumo
