#!/usr/bin/python3
# %% [markdown]
# # The seed notebook, retold with pneumo underneath
#
# The RSNA pneumonia notebook (`/work/shared/reference/seed-notebook.txt` in the project; Kaggle
# 2018) cell by cell, with the engine doing the work through the Python module `pneumo`
# (apps/python/python.md): exploration, the network, ONE training step looked at layer by layer,
# a few more steps, prediction (probability map -> boxes) and the competition metric.
#
# Run it as a script (`python3 apps/walkthrough/notebook_walkthrough.py [--tiny] [WORK_DIR]`,
# with PYTHONPATH at the module: `build/python` or an installed site-packages folder), or as a
# notebook: `apps/walkthrough/run_notebook.sh` converts the `# %%` cells and runs them headless.
# Without real data (PNEUMO_DATA=<the Kaggle folder>) it writes a small synthetic dataset.

# %%
import os
import sys
import tempfile

import numpy as np

import pneumo

# Settings: --tiny (or PNEUMO_WALKTHROUGH_TINY=1) keeps everything small enough for a test.
IN_NOTEBOOK = "ipykernel" in sys.modules  # a kernel's argv is its own, not ours
arguments = [] if IN_NOTEBOOK else [argument for argument in sys.argv[1:] if not argument.startswith("-")]
TINY = (not IN_NOTEBOOK and "--tiny" in sys.argv) or os.environ.get("PNEUMO_WALKTHROUGH_TINY") == "1"
WORK = arguments[0] if arguments else os.environ.get("PNEUMO_WALKTHROUGH_DIR") or tempfile.mkdtemp(prefix="walkthrough-")
os.makedirs(WORK, exist_ok=True)
SIZE, CHANNELS, BLOCKS, DEPTH, BATCH = (32, 4, 1, 2, 8) if TINY else (128, 8, 1, 4, 16)
STEPS, SEED = (6, 1) if TINY else (60, 1)
print("pneumo %s, work folder %s, %s settings" % (pneumo.__version__, WORK, "tiny" if TINY else "small"))

# %% [markdown]
# ## The data
# The notebook reads `../input/stage_1_train_labels.csv`. Here: the Kaggle folder named by
# PNEUMO_DATA, or a synthetic dataset in the same layout (`pneumo synth` writes the same).

# %%
DATA = os.environ.get("PNEUMO_DATA") or os.path.join(WORK, "data")
if not os.environ.get("PNEUMO_DATA") and not os.path.exists(DATA):
    pneumo.write_synthetic_dataset(DATA, train_images=40 if TINY else 400, test_images=0,
                                   image_size=128 if TINY else 1024, seed=3)
layout = pneumo.find_dataset(DATA)
print(layout["train_labels"])

# %% [markdown]
# ## Load pneumonia locations
# The notebook builds `pneumonia_locations = {filename: [[x, y, w, h], ...]}` from the CSV.
# `pneumo.read_labels` checks every row (a malformed one is an error naming file, line and field).

# %%
labels = pneumo.read_labels(layout["train_labels"])
pneumonia_locations = {pid: [list(box) for box in labels.boxes(pid)] for pid in labels.patient_ids
                       if labels.boxes(pid)}
print("images", len(labels.patient_ids), "with pneumonia", len(pneumonia_locations), "boxes", labels.box_count)

# %% [markdown]
# ## Load filenames and split
# The notebook shuffles with `random.shuffle` and keeps 2560 for validation; pneumo's split is
# seeded (`pneumo train --seed`), so the same seed gives the same split everywhere.

# %%
n_valid_samples = max(BATCH, len(labels.patient_ids) // 5)
train_ids, valid_ids = pneumo.split_patients(list(labels.patient_ids), n_valid_samples, SEED)
print("n train samples", len(train_ids))
print("n valid samples", len(valid_ids))

# %% [markdown]
# ## Exploration
# Boxes per image, where they lie (the notebook's heatmap) and their sizes.

# %%
ns = [len(value) for value in pneumonia_locations.values()]
for count in range(1, max(ns) + 1):
    print("%d box(es): %3d images %s" % (count, ns.count(count), "#" * ns.count(count)))
first = pneumo.read_dicom(pneumo.dicom_path(layout["train_images"], labels.patient_ids[0]))
heatmap = np.zeros(first.shape)
hs, ws = [], []
for values in pneumonia_locations.values():
    for x, y, w, h in values:
        heatmap[y:y + h, x:x + w] += 1
        ws.append(w)
        hs.append(h)
rows = heatmap.sum(axis=1)
print("heatmap: boxes cover rows %d..%d of %d (the lungs)" % (np.nonzero(rows)[0][0], np.nonzero(rows)[0][-1],
                                                             len(rows)))
print("Minimum pneumonia height:", np.min(hs))
print("Minimum pneumonia width: ", np.min(ws))

# %% [markdown]
# ## The data generator
# The notebook's `generator` reads a DICOM, resizes it to 256x256 (skimage `resize`, reflect
# mode), draws the boxes into a mask, flips half the images. pneumo's BatchLoader does the same
# in background threads from a memory-mapped cache of resized images; one image by hand first.

# %%
patient = next(iter(pneumonia_locations))
image, (width, height) = pneumo.load_resized_image(pneumo.dicom_path(layout["train_images"], patient), SIZE)
mask = pneumo.box_mask(labels.boxes(patient), height, width, SIZE)
print("image", image.shape, image.dtype, "range %.3f..%.3f" % (image.min(), image.max()),
      "| mask covers %.1f%% of it" % (100 * mask.mean()))
cache = pneumo.ImageCache.open_or_build(pneumo.default_cache_path(WORK, layout["train_images"], SIZE),
                                        layout["train_images"], SIZE)
train_gen = pneumo.BatchLoader(train_ids, labels, "train", layout["train_images"], cache=cache, image_size=SIZE,
                               batch_size=BATCH, workers=2, seed=SEED, flip=True)
valid_gen = pneumo.BatchLoader(valid_ids, labels, "evaluate", layout["train_images"], cache=cache,
                               image_size=SIZE, batch_size=BATCH, workers=2, seed=SEED)
train_gen.start_epoch(0)
batch = train_gen.next()
print("batch images", batch["images"].shape, "masks", batch["masks"].shape, "first ids", batch["patient_ids"][:2])

# %% [markdown]
# ## The network
# `create_network(input_size=256, channels=32, n_blocks=2, depth=4)`: a 3x3 convolution, then per
# depth a downsampling block (BN, ReLU, 1x1 conv, max pool) and residual blocks, then BN, ReLU,
# a 1x1 convolution to one channel, a sigmoid and an upsampling back to the input size.

# %%
model = pneumo.Network(size=SIZE, channels=CHANNELS, blocks=BLOCKS, depth=DEPTH, seed=SEED)
print(model.summary(batch=BATCH))

# %% [markdown]
# ## One training step, layer by layer
# Keras hides this inside `fit_generator`. Forward, the loss (`iou_bce_loss`: half binary
# cross-entropy, half soft IoU), backward, then Adam. Every node's output and d loss / d output
# can be read by name.

# %%
images, masks = batch["images"], batch["masks"]
probabilities = model.forward(images, training=True).copy()
loss, dloss = pneumo.iou_bce_loss(probabilities, masks)
print("loss %.4f = 0.5 * bce %.4f + 0.5 * iou_loss %.4f" % (loss["loss"], loss["bce"], loss["iou_loss"]))
model.zero_gradients()
model.backward(dloss)
print("%-18s %-12s %-16s %10s %10s" % ("node", "kind", "output", "mean|out|", "mean|grad|"))
for name in model.node_names():
    output, gradient = model.read_output(name), model.read_gradient(name)
    print("%-18s %-12s %-16s %10.3g %10.3g" % (name, model.node(name)["kind"], output.shape[1:],
                                               np.abs(output).mean(), np.abs(gradient).mean()))

# %% [markdown]
# One layer on its own: the first convolution, with the network's weights, on the same images,
# gives the network's `conv0` output; its backward from the network's d loss / d conv0 gives
# the network's weight gradient.

# %%
conv0 = pneumo.layers.Conv2d(1, CHANNELS, 3)
conv0.parameter("weight")[...] = model.parameter("conv0.weight")
out = conv0.forward(images)
conv0.backward(model.read_gradient("conv0"))
print("conv0 output equal:", np.array_equal(out, model.read_output("conv0")),
      "| weight gradient max difference %.3g" % np.abs(conv0.parameter_gradient("weight") -
                                                     model.parameter_gradient("conv0.weight")).max())

# %% [markdown]
# Adam updates every weight from its gradient; its moments are readable by name too.

# %%
adam = pneumo.Adam()
adam.step(model, pneumo.cosine_annealing(0, 1e-3, 25))
print("conv0.weight: gradient %.3g, Adam m %.3g, v %.3g (mean |.|)" % (
    np.abs(model.parameter_gradient("conv0.weight")).mean(), np.abs(model.adam_m("conv0.weight")).mean(),
    np.abs(model.adam_v("conv0.weight")).mean()))

# %% [markdown]
# ## Training
# The notebook's `fit_generator` with the cosine learning rate; `pneumo.train_step` is the step
# `pneumo train` runs (forward, loss, backward, Adam). A few steps only here: `pneumo train` is
# the program for whole runs.

# %%
model = pneumo.Network(size=SIZE, channels=CHANNELS, blocks=BLOCKS, depth=DEPTH, seed=SEED)
adam = pneumo.Adam()
epoch, history = 0, []
train_gen.start_epoch(epoch)
for step in range(STEPS):
    batch = train_gen.next()
    if batch is None:
        epoch += 1
        train_gen.start_epoch(epoch)
        batch = train_gen.next()
    result = pneumo.train_step(model, adam, batch["images"], batch["masks"], pneumo.cosine_annealing(epoch, 3e-3, 8))
    history.append(result["loss"])
    print("step %2d epoch %d: loss %.4f acc %.4f iou %.4f" % (step + 1, epoch + 1, result["loss"], result["accuracy"],
                                                             result["mean_iou"]))

# %% [markdown]
# ## Prediction
# The notebook thresholds the predicted mask, labels its connected components and draws a box
# around each, with the mean probability inside as the confidence; pneumo's post-processing
# resizes the map to the image's own size first (as the notebook's test cell does).

# %%
predictions = {}
valid_gen.start_epoch(0)
while True:
    batch = valid_gen.next()
    if batch is None:
        break
    probabilities = model.forward(batch["images"], training=False)
    for pid, probability in zip(batch["patient_ids"], probabilities):
        # Boxes in the image's own pixels (every image of a dataset has one size here: 1024 for RSNA).
        predictions[pid] = pneumo.boxes_from_probability_map(probability[:, :, 0], 0.5, height, width)
print("boxes predicted on %d of %d validation images" % (sum(1 for b in predictions.values() if b), len(predictions)))
example = next((pid for pid in valid_ids if labels.boxes(pid)), valid_ids[0])
print(example, "truth", labels.boxes(example), "predicted", predictions[example][:3])

# %% [markdown]
# ## The metric
# The competition's: per image, the mean over IoU thresholds 0.40..0.75 of TP / (TP + FP + FN),
# then the mean over images (an image with neither truth nor prediction is skipped).

# %%
metric = pneumo.mean_average_precision(labels, predictions, valid_ids)
print("validation mAP %.4f over %d images (%d skipped)" % (metric["map"], metric["images_scored"],
                                                           metric["images_skipped"]))
checkpoint = os.path.join(WORK, "walkthrough.safetensors")
model.save(checkpoint, step=adam.step_count)
print("saved", checkpoint, "- `pneumo predict --checkpoint` reads it")
