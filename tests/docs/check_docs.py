#!/usr/bin/python3
"""Fails when a teaching page names a file, function or type that is not in the code.

Pages: README.md and every *.md under engine/ kernels/ layers/ data/ apps/ benchmarks/.
From each page's inline code spans (`...`, not fenced blocks) it checks:
  * paths such as `layers/conv2d.cpp`, `tests/support/gradient_check.h` or
    `layers/add.{h,cpp,cu}` exist (relative to the repository root, or to the page's folder);
    a bare file name such as `add.cpp` must exist somewhere in the repository;
  * identifier-looking names exist as a word in the sources (*.h *.cpp *.inc *.cu *.py *.sh,
    CMakeLists.txt): names with `_` (`conv2d_forward_cpu`), with `::` (`Layer::forward`: every
    part), CamelCase followed by `(` (`Conv2dGeometry(`) and a span that is one CamelCase word
    (`ParameterStore`);
  * tensor names of the network (`block1_1.conv1.weight`, `down2.bn.gamma`, ...) follow the
    node naming of layers/network.h.
It also checks the function chains the code prints (`pneumo inspect`): every name with `_` or
`::` in the string literals of a layer's `functions` override (layers/*.cpp) and of the CPU
convolution table (`kKernels`, layers/conv2d_cpu_kernels.cpp), and every `*_cpu` / `*_cuda` /
`X::y` name in apps/inspect_page*.cpp's literals, must occur in the code outside string
literals and comments (so a chain cannot vouch for itself).
Names that belong to other projects (Keras, PyTorch, cuDNN, the notebook) are in ALLOWED below,
each with the reason; names with a foreign dotted prefix (`torch.`, `np.`, `tf.`, ...) are
skipped. Usage: check_docs.py [REPOSITORY_ROOT]. Exit 0 when every name resolves, 1 otherwise,
printing `page:line: name: what is wrong` for each.
"""
import os
import re
import sys

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", ".."))
PAGE_FOLDERS = ["engine", "kernels", "layers", "data", "apps", "benchmarks"]
SOURCE_FOLDERS = ["engine", "kernels", "layers", "data", "apps", "tests", "benchmarks", ".ci"]
SOURCE_SUFFIXES = (".h", ".cpp", ".inc", ".cu", ".py", ".sh")
SKIP_FOLDERS = {"third_party", "fixtures", "build", ".git"}

# Names the pages may use that are not defined in this repository. Keep it short: each entry
# says where the name comes from.
ALLOWED = {
    # the notebook / Keras / TensorFlow
    "create_network", "create_downsample", "create_resblock", "iou_bce_loss", "iou_loss", "mean_iou", "binary_accuracy", "LearningRateScheduler",
    "BatchNormalization", "LeakyReLU", "MaxPool2D", "UpSampling2D", "Conv2D", "moving_mean",
    "moving_variance", "clip_by_value", "n_blocks", "binary_crossentropy", "resize_images",
    # PyTorch / numpy / scikit-image / pydicom
    "BatchNorm2d", "state_dict", "load_state_dict", "running_mean", "running_var", "allow_tf32",
    "from_numpy", "load_file", "num_batches_tracked", "requires_grad", "no_grad", "manual_seed",
    "Conv2d", "MaxPool2d", "Upsample", "Sigmoid", "ReLU", "Dropout", "Module", "ModuleDict",
    "conv2d", "max_pool2d", "batch_norm", "binary_cross_entropy", "Adam", "AdamW", "_foreach_",
    # CUDA / cuDNN / cuBLAS / compilers / OpenBLAS
    "CUDNN_TENSOR_NHWC", "CUDNN_FMA_MATH", "CUDNN_DEFAULT_MATH", "CUDNN_STATUS_NOT_SUPPORTED",
    "cudnnConvolutionForward", "cudnnConvolutionBackwardData", "cudnnConvolutionBackwardFilter",
    "cudnnAddTensor", "cublasSgemv", "cudaMalloc", "cudaMemset", "cudaFree", "__host__", "__device__",
    "__global__", "__builtin_cpu_supports", "OPENBLAS_CORETYPE", "cblas_sgemm", "sched_yield",
    "JDCT_IFAST",                        # libjpeg's DCT method constant (data/input/decoding.md)
    "_to_ndimage_mode",                  # scikit-image's private helper that data/input/decoding.md quotes
    # the competition's public kernel and the safetensors format
    "__metadata__", "data_offsets", "PredictionString", "patientId",
}
FOREIGN_PATH_PREFIXES = ("skimage/", "torch/", "/usr/", "/opt/")  # files of other projects
FOREIGN_PREFIXES = ("torch.", "np.", "numpy.", "tf.", "keras.", "nn.", "F.", "skimage.", "pydicom.",
                    "safetensors.", "json.", "os.", "sys.", "math.", "std::", "cv2.")

PATH_RE = re.compile(r"(?<![\w/.-])((?:\.?[\w-]+/)*[\w.-]+\.(?:\{[\w,]+\}|h|cpp|cu|md|py|sh|txt))(?![\w{])")
IDENT_RE = re.compile(r"[A-Za-z_~][A-Za-z0-9_]*(?:::[A-Za-z_~][A-Za-z0-9_]*)*")
CAMEL_RE = re.compile(r"^[A-Z][a-z0-9]+(?:[A-Z][A-Za-z0-9]*)+$")
NODE_NAME_RE = re.compile(r"^(?:conv0|down\d+|block\d+|head)(?:[._]|$)")
VALID_NODE_RE = re.compile(
    r"^(?:conv0|down\d+\.(?:bn|relu|conv|pool)|block\d+_\d+\.(?:bn1|relu1|conv1|dropout|bn2|relu2|conv2|add)"
    r"|head\.(?:bn|relu|conv|sigmoid|upsample))"
    r"(?:\.(?:weight|bias|gamma|beta|running_mean|running_var|\*))?$")


def source_words_and_files():
    words, files = set(), set()
    for top in SOURCE_FOLDERS + [""]:
        base = os.path.join(ROOT, top)
        if not os.path.isdir(base):
            continue
        for folder, subfolders, names in os.walk(base):
            subfolders[:] = [s for s in subfolders if s not in SKIP_FOLDERS and not s.startswith("build")]
            if top == "":
                subfolders[:] = []  # only the root's own files
            for name in names:
                files.add(name)
                words.add(name.split(".")[0])  # target names such as bench_decode
                if name.startswith("check_") and name.endswith(".py"):
                    words.add("page_" + name[:-3])  # the CTest name of a page's check
                if name.endswith(SOURCE_SUFFIXES) or name == "CMakeLists.txt":
                    with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as f:
                        words.update(re.findall(r"[A-Za-z_~][A-Za-z0-9_]*", f.read()))
    return words, files


def pages():
    yield os.path.join(ROOT, "README.md")
    for top in PAGE_FOLDERS:
        for folder, subfolders, names in os.walk(os.path.join(ROOT, top)):
            subfolders[:] = [s for s in subfolders if s not in SKIP_FOLDERS]
            for name in sorted(names):
                if name.endswith(".md"):
                    yield os.path.join(folder, name)


def inline_spans(text):
    """(line number, span) for every `...` outside code blocks, and every quoted string inside
    fenced blocks that looks like a network tensor name (snippets index checkpoints by name)."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            for literal in re.findall(r"[\"']([\w.*]+)[\"']", line):
                if NODE_NAME_RE.match(literal) and "." in literal:
                    yield number, literal
            continue
        if line.startswith("    "):  # indented blocks are code too
            continue
        for span in re.findall(r"`([^`]+)`", line):
            yield number, span


def expand_braces(path):
    match = re.search(r"\{([\w,]+)\}", path)
    if not match:
        return [path]
    return [path[:match.start()] + part + path[match.end():] for part in match.group(1).split(",")]


def check_path(path, page_folder, files):
    for candidate in expand_braces(path):
        if "/" not in candidate:
            if candidate not in files and not os.path.exists(os.path.join(page_folder, candidate)):
                return candidate
            continue
        if not (os.path.exists(os.path.join(ROOT, candidate)) or os.path.exists(os.path.join(page_folder, candidate))):
            return candidate
    return None


STRING_RE = re.compile(r'"(?:[^"\\\n]|\\.)*"')
COMMENT_RE = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)


def code_words():
    """Words of the C++/CUDA sources with string literals and comments removed."""
    words = set()
    for top in ["engine", "kernels", "layers", "data", "apps"]:
        for folder, subfolders, names in os.walk(os.path.join(ROOT, top)):
            subfolders[:] = [s for s in subfolders if s not in SKIP_FOLDERS]
            for name in names:
                if name.endswith((".h", ".cpp", ".cu", ".inc")):
                    with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as f:
                        text = COMMENT_RE.sub(" ", STRING_RE.sub('""', f.read()))
                    words.update(re.findall(r"[A-Za-z_~][A-Za-z0-9_]*", text))
    return words


def chain_literals():
    """(file:line, literal, strict) for the function chains the code prints."""
    found = []
    layers = os.path.join(ROOT, "layers")
    for name in sorted(os.listdir(layers)):
        if not name.endswith(".cpp"):
            continue
        with open(os.path.join(layers, name), encoding="utf-8") as f:
            text = f.read()
        regions = [m.span() for m in re.finditer(r"LayerFunctions \w+::functions\(.*?\n}\n", text, re.S)]
        regions += [m.span() for m in re.finditer(r"const ConvCpuKernel kKernels\[\] = \{.*?\n};", text, re.S)]
        for begin, end in regions:
            line = text.count("\n", 0, begin) + 1
            # "leaky_relu_forward" + b + " -> ...": the suffix b ("_cpu" or "_cuda") joined in.
            region = re.sub(r'"\s*\+\s*b\s*\+\s*"', "_cpu", text[begin:end])
            region = re.sub(r'"\s*\+\s*b\b', '_cpu"', region)
            for literal in STRING_RE.finditer(region):
                if literal.group(0) in ('"_cpu"', '"_cuda"'):
                    continue
                where = "layers/%s:%d" % (name, line + region.count("\n", 0, literal.start()))
                found.append((where, literal.group(0)[1:-1], True))
    apps = os.path.join(ROOT, "apps")
    for name in sorted(os.listdir(apps)):
        if name.startswith("inspect_page") and name.endswith(".cpp"):
            with open(os.path.join(apps, name), encoding="utf-8") as f:
                text = f.read()
            for literal in STRING_RE.finditer(text):
                line = text.count("\n", 0, literal.start()) + 1
                found.append(("apps/%s:%d" % (name, line), literal.group(0)[1:-1], False))
    return found


def check_chains(problems):
    words, checked = code_words(), 0
    for where, literal, strict in chain_literals():
        for name in IDENT_RE.findall(PATH_RE.sub(" ", literal)):
            functional = "::" in name or name.endswith(("_cpu", "_cuda"))
            if not (functional or (strict and "_" in name.strip("_"))):
                continue
            if re.match(r"^(?:cudnn|cublas|cuda|nccl)[A-Z]", name):
                continue  # the CUDA libraries' API
            for part in [p for p in name.split("::") if p]:
                checked += 1
                if part not in words:
                    problems.append("%s: \"%s\": `%s` is not a function or type of the code" % (where, literal[:60], part))
    return checked


def main():
    words, files = source_words_and_files()
    problems, checked = [], 0
    checked += check_chains(problems)
    for page in pages():
        relative = os.path.relpath(page, ROOT)
        page_folder = os.path.dirname(page)
        with open(page, encoding="utf-8") as f:
            text = f.read()
        for number, span in inline_spans(text):
            where = "%s:%d" % (relative, number)
            # 1. paths
            for path in PATH_RE.findall(span):
                if "://" in span or path.startswith(("<", "RUN", "run/", "out/", "runs/") + FOREIGN_PATH_PREFIXES) or "<" in path:
                    continue
                if re.match(r"^[\w-]+\.(txt|md)$", path) and path not in ("README.md", "CMakeLists.txt"):
                    continue  # run-directory outputs such as config.txt, log.txt
                checked += 1
                missing = check_path(path, page_folder, files)
                if missing:
                    problems.append("%s: `%s`: no such file in the repository" % (where, missing))
            span_without_paths = PATH_RE.sub(" ", span)
            # 2. network tensor names
            for dotted in re.findall(r"[A-Za-z_][\w]*(?:\.[\w*]+)+", span_without_paths):
                if NODE_NAME_RE.match(dotted) and "." in dotted:
                    checked += 1
                    if not VALID_NODE_RE.match(dotted):
                        problems.append("%s: `%s`: not a tensor name the network builds (layers/network.h)" % (where, dotted))
            # 3. identifiers
            for match in IDENT_RE.finditer(span_without_paths):
                name = match.group(0)
                before = span_without_paths[:match.start()]
                after = span_without_paths[match.end():]
                if before.endswith(".") or re.search(r"(?:%s)$" % "|".join(re.escape(p) for p in FOREIGN_PREFIXES), before):
                    continue  # a member of something foreign (torch.x, np.x) or of a dotted name
                if after.startswith(".") and not NODE_NAME_RE.match(name):
                    continue  # the head of a dotted name (module.member)
                is_camel_call = CAMEL_RE.match(name) and after.lstrip().startswith("(")
                is_camel_span = CAMEL_RE.match(name) and span.strip() == name
                if not ("_" in name.strip("_") or "::" in name or is_camel_call or is_camel_span):
                    continue
                if NODE_NAME_RE.match(name):
                    continue  # node names are checked above
                if "=" in span and not after.startswith("("):
                    continue  # a code statement: its variables are the snippet's own
                if re.match(r"^(?:cudnn|cublas|cuda|nccl)[A-Z]|^(?:CUDNN|CUBLAS|CUDA|NCCL)_", name):
                    continue  # the CUDA libraries' API
                if before.endswith("-") and name.startswith("D"):
                    name = name[1:]  # a CMake -D option
                parts = [p for p in name.split("::") if p]
                for part in parts:
                    if part in ALLOWED or part.startswith("~") and part[1:] in words:
                        continue
                    checked += 1
                    if part not in words:
                        problems.append("%s: `%s`: `%s` does not occur in the sources" % (where, name, part))
    for problem in problems:
        print(problem)
    print("check_docs: %d names and paths checked, %d not found" % (checked, len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
