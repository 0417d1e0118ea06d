#!/usr/bin/python3
"""The notebook's data path, for comparison with bench_data_pipeline: pydicom decode +
skimage resize(img, (256, 256), mode='reflect') per image, one process (one core).

Usage: /usr/bin/python3 benchmarks/data/notebook_data_path.py IMAGE_DIR [IMAGES] [--pneumo-rate R]
Prints the median images/s over 3 rounds; with --pneumo-rate (bench_data_pipeline's one-thread
decode+resize figure) also the ratio pneumo / notebook.
"""
import os
import sys
import time

import pydicom
from skimage.transform import resize


def main():
    args = [a for a in sys.argv[1:] if not a.startswith('--')]
    pneumo_rate = None
    if '--pneumo-rate' in sys.argv:
        pneumo_rate = float(sys.argv[sys.argv.index('--pneumo-rate') + 1])
        args = [a for a in args if a != sys.argv[sys.argv.index('--pneumo-rate') + 1]]
    folder = args[0]
    count = int(args[1]) if len(args) > 1 else 64
    names = sorted(n for n in os.listdir(folder) if n.endswith('.dcm'))[:count]
    rates = []
    for _ in range(3):
        start = time.perf_counter()
        for name in names:
            img = pydicom.dcmread(os.path.join(folder, name)).pixel_array
            resize(img, (256, 256), mode='reflect')
        rates.append(len(names) / (time.perf_counter() - start))
    rates.sort()
    rate = rates[len(rates) // 2]
    print(f'notebook path (pydicom {pydicom.__version__} + skimage resize), 1 core: '
          f'median {rate:.1f} images/s ({1000 / rate:.1f} ms/image) over {len(names)} images')
    if pneumo_rate is not None:
        print(f'pneumo decode+resize / notebook path: {pneumo_rate / rate:.1f}x per core')


if __name__ == '__main__':
    main()
