#!/usr/bin/python3
"""`pneumo train`'s first step, repeated through the Python module: the same loss, exactly.

  first_step.py PNEUMO_BINARY WORK_DIR [--installed PREFIX]

Writes a tiny synthetic dataset with `pneumo synth`, trains one batch with `pneumo train
--stop-after 1` (whose last.safetensors records the step's loss as run.partial_loss, printed with
17 significant digits), then rebuilds that step from the module's parts as a learner would (the
dataset layout, labels, split, image cache, batch loader, network, Adam and the cosine schedule,
layers/training_step.h underneath) and requires the same loss, accuracy and IoU bit for bit.
With --installed PREFIX it also requires that `pneumo` was imported from under PREFIX.
"""
import os
import shutil
import subprocess
import sys

try:
    import pneumo
except ImportError as error:
    print("SKIPPED: the pneumo Python module is not importable (%s); PYTHONPATH=%s"
          % (error, os.environ.get("PYTHONPATH", "")))
    sys.exit(77)

binary, work = sys.argv[1], sys.argv[2]
if len(sys.argv) > 4 and sys.argv[3] == "--installed":
    prefix = os.path.realpath(sys.argv[4])
    where = os.path.realpath(pneumo.__file__)
    assert where.startswith(prefix + os.sep), "pneumo imported from %s, not from under %s" % (where, prefix)
    print("module: %s" % where)

SEED, SIZE, CHANNELS, BLOCKS, DEPTH, BATCH, EPOCHS, LR, VALIDATION = 5, 32, 4, 1, 2, 8, 2, 3e-3, 8
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
data, run = os.path.join(work, "data"), os.path.join(work, "run")
subprocess.run([binary, "synth", "--out", data, "--train-images", "24", "--test-images", "0", "--image-size", "96",
                "--seed", "3"], check=True, stdout=subprocess.DEVNULL,
               stderr=subprocess.DEVNULL)
train = subprocess.run([binary, "train", "--data", data, "--run-dir", run, "--device", "cpu", "--size", str(SIZE),
                        "--channels", str(CHANNELS), "--blocks", str(BLOCKS), "--depth", str(DEPTH), "--batch",
                        str(BATCH), "--epochs", str(EPOCHS), "--lr", repr(LR), "--validation", str(VALIDATION),
                        "--seed", str(SEED), "--workers", "2", "--stop-after", "1"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
assert train.returncode == 130, "pneumo train --stop-after 1 exited %d:\n%s" % (train.returncode, train.stdout)
recorded = pneumo.read_checkpoint_info(os.path.join(run, "last.safetensors"))["metadata"]
assert recorded["run.partial_batches"] == "1", recorded["run.partial_batches"]

# The same step from the module's parts (apps/training_run.cpp, Trainer::prepare_data and
# train_epoch, in Python).
layout = pneumo.find_dataset(data)
labels = pneumo.read_labels(layout["train_labels"])
ids = list(labels.patient_ids)
validation = pneumo.validation_size(len(ids), VALIDATION)
train_ids, validation_ids = pneumo.split_patients(ids, validation, SEED)
cache = pneumo.ImageCache.open_or_build(os.path.join(work, "python-%d.pneumocache" % SIZE), layout["train_images"],
                                        SIZE)
loader = pneumo.BatchLoader(train_ids, labels, "train", layout["train_images"], cache=cache, image_size=SIZE,
                            batch_size=BATCH, workers=3, seed=SEED, flip=True)
loader.start_epoch(0)
batch = loader.next()
network = pneumo.Network(size=SIZE, channels=CHANNELS, blocks=BLOCKS, depth=DEPTH, seed=SEED)
adam = pneumo.Adam()
step = pneumo.train_step(network, adam, batch["images"], batch["masks"], pneumo.cosine_annealing(0, LR, EPOCHS))

for key, field in (("loss", "run.partial_loss"), ("accuracy", "run.partial_accuracy"), ("mean_iou", "run.partial_iou")):
    print("%-8s pneumo train %s   module %.17g" % (key, recorded[field], step[key]))
    assert float(recorded[field]) == step[key], (key, recorded[field], step[key])
# The updated parameters too: the module's network after its step equals the run's checkpoint.
trained = pneumo.Network(size=SIZE, channels=CHANNELS, blocks=BLOCKS, depth=DEPTH, seed=SEED)
trained.load(os.path.join(run, "last.safetensors"))
for name in network.parameter_names():
    assert (network.parameter(name) == trained.parameter(name)).all(), name
print("first step: pneumo train and the module agree exactly (loss, accuracy, IoU and every parameter)")
