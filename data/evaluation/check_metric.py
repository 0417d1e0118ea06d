#!/usr/bin/python3
"""data/evaluation/metric.md, runnable: the competition metric written from the page's definition, on the
page's worked example (image score 0.5625, dataset 0.28125) and the order-of-matching case.

Run: /usr/bin/python3 data/evaluation/check_metric.py        (plain Python; no torch needed)

Exercises
 1. Move prediction p2 of the worked example 5 pixels right instead of 10 and predict the new
    image score before running it.
 2. Give P1 and P2 of the order case equal confidences and swap their order in the list: which
    score does each order give, and why does the page insist on a stable sort?
"""
THRESHOLDS = [0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70, 0.75]


def iou(a, b):
    """Boxes (x, y, width, height) covering pixels [x, x+w) x [y, y+h)."""
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    intersection = max(0, width) * max(0, height)
    return intersection / (a[2] * a[3] + b[2] * b[3] - intersection)


def image_score(truth, predictions):
    """None when both are empty (skipped); predictions are (confidence, box)."""
    if not truth and not predictions:
        return None
    ranked = [box for _, box in sorted(predictions, key=lambda p: -p[0])]  # stable: ties keep order
    total = 0.0
    for t in THRESHOLDS:
        used = [False] * len(ranked)
        tp = 0
        for g in truth:
            for k, box in enumerate(ranked):
                if not used[k] and iou(g, box) >= t:
                    used[k] = True
                    tp += 1
                    break
        fp, fn = used.count(False), len(truth) - tp
        total += tp / (tp + fp + fn)
    return total / len(THRESHOLDS)


A, B = (0, 0, 100, 100), (200, 200, 50, 50)
worked = image_score([A, B], [(0.9, (0, 0, 100, 80)), (0.8, (210, 200, 50, 50)), (0.3, (500, 500, 10, 10))])
print("worked example: image score %.6f (page: 0.5625)" % worked)
assert abs(worked - 0.5625) < 1e-12
scores = [s for s in (worked, image_score([], []), image_score([], [(0.5, (1, 1, 5, 5))])) if s is not None]
dataset = sum(scores) / len(scores)
print("with a skipped and a false-positive negative image: %.6f over %d images (page: 0.28125 over 2)"
      % (dataset, len(scores)))
assert abs(dataset - 0.28125) < 1e-12 and len(scores) == 2
G1, G2, P1, P2 = (0, 0, 10, 10), (0, 5, 10, 10), (0, 2, 10, 10), (0, 0, 10, 10)
first = image_score([G1, G2], [(0.9, P1), (0.8, P2)])
second = image_score([G1, G2], [(0.8, P1), (0.9, P2)])
print("order of matching: P1 first %.6f (page 1/3), P2 first %.6f (page 7/12)" % (first, second))
assert abs(first - 1 / 3) < 1e-12 and abs(second - 7 / 12) < 1e-12

# The exercises' answers (the page's "Solutions").
# 1. p2 five pixels right: IoU with B = 45*50 / (2*2500 - 45*50) = 0.818 instead of 0.667.
moved = image_score([A, B], [(0.9, (0, 0, 100, 80)), (0.8, (205, 200, 50, 50)), (0.3, (500, 500, 10, 10))])
print("p2_iou_moved_5 = %.3f" % iou(B, (205, 200, 50, 50)))
print("image_score_p2_moved_5 = %.4f" % moved)
# 2. Equal confidences: the stable sort keeps the list order, so the order decides the matching.
tie_p1_first = image_score([G1, G2], [(0.9, P1), (0.9, P2)])
tie_p2_first = image_score([G1, G2], [(0.9, P2), (0.9, P1)])
print("tie_p1_listed_first = %.4f" % tie_p1_first)
print("tie_p2_listed_first = %.4f" % tie_p2_first)
assert abs(tie_p1_first - 1 / 3) < 1e-12 and abs(tie_p2_first - 7 / 12) < 1e-12
