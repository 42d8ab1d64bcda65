#!/usr/bin/env python3
"""Rewrites the CUDA-only syntax of src/cuda so that g++ compiles it against cuda_emu.h.

    rewrite_cuda.py --src DIR --out DIR [--kernels FILE] FILE...

Each FILE (relative to --src) is written to --out (a .cu file as .cu.cpp) with:
  - every launch `k<<<grid, block[, smem[, stream]]>>>(args)` turned into
    `::cae_emu::launch(k, "k", ::cae_emu::config(grid, block, smem, stream), args)`, or, for a
    kernel template, `::cae_emu::launch_deduced` with a generic lambda that calls it (template
    arguments not written are then deduced as nvcc deduces them);
  - every `__shared__ [__align__(N)] T name[d]...;` turned into per-block storage and every
    `extern __shared__ [__align__(N)] T name[];` into the block's dynamic buffer;
  - CAE_EMU_KERNEL_ENTRY("name") at the start of every __global__ function's body
    (CAE_EMU_KERNEL_ENTRY_BOUNDED("name", max_threads) where it has __launch_bounds__).
Fails (exit 1, naming the file and line) if a `<<<`, `__shared__` or `asm` survives. Lines keep
their numbers, so compiler errors and sanitizer reports point at the original source.
--kernels writes a header listing every __global__ function of all the files (for the test that
every kernel was launched).
"""
import argparse
import os
import re
import sys

GLOBAL_RE = re.compile(
    r"__global__\s+(?:void\s+)?(?:__launch_bounds__\s*\(((?:[^()]|\([^()]*\))*)\)\s*)?(?:void\s+)?([A-Za-z_]\w*)\s*\(")
TEMPLATE_KERNEL_RE = re.compile(
    r"template\s*<[^;{]*?>\s*__global__\s+(?:void\s+)?(?:__launch_bounds__\s*\((?:[^()]|\([^()]*\))*\)\s*)?"
    r"(?:void\s+)?([A-Za-z_]\w*)\s*\(")
SHARED_RE = re.compile(
    r"(extern\s+)?__shared__\s+(?:__align__\s*\(\s*(\w+)\s*\)\s+)?([A-Za-z_][\w:<>, ]*?)\s+([A-Za-z_]\w*)\s*((?:\[[^\]]*\]\s*)*);")


def fail(path, text, pos, msg):
    line = text.count("\n", 0, pos) + 1
    sys.stderr.write(f"{path}:{line}: rewrite_cuda: {msg}\n")
    sys.exit(1)


def strip_comments(text):
    """The text with comments and string literals blanked out (same length, newlines kept)."""
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            for k in range(i, j):
                out[k] = " "
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            for k in range(i, j):
                if text[k] != "\n":
                    out[k] = " "
            i = j
        elif c == '"' or c == "'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            for k in range(i + 1, min(j, n)):
                if text[k] != "\n":
                    out[k] = " "
            i = j + 1
        else:
            i += 1
    return "".join(out)


def match_close(code, pos, open_ch, close_ch):
    """Index of the bracket closing the one at code[pos]."""
    depth = 0
    for i in range(pos, len(code)):
        if code[i] == open_ch:
            depth += 1
        elif code[i] == close_ch:
            depth -= 1
            if depth == 0:
                return i
    return -1


def split_top(code, start, end):
    """Top-level comma-separated pieces of code[start:end] as (start, end) pairs."""
    parts, depth, s = [], 0, start
    for i in range(start, end):
        c = code[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append((s, i))
            s = i + 1
    parts.append((s, end))
    return parts


def kernel_expr_start(code, pos):
    """Start of the kernel expression that ends right before code[pos] (the `<<<`)."""
    i = pos
    while i > 0 and code[i - 1].isspace():
        i -= 1
    while True:
        if i > 0 and code[i - 1] == ">":
            depth, j = 0, i - 1
            while j >= 0:
                if code[j] == ">":
                    depth += 1
                elif code[j] == "<":
                    depth -= 1
                    if depth == 0:
                        break
                j -= 1
            i = j
            while i > 0 and code[i - 1].isspace():
                i -= 1
        j = i
        while j > 0 and (code[j - 1].isalnum() or code[j - 1] == "_"):
            j -= 1
        if j == i:
            return -1
        i = j
        if i >= 2 and code[i - 2:i] == "::":
            i -= 2
            continue
        return i


def rewrite(path, text, template_kernels):
    code = strip_comments(text)
    edits = []  # (start, end, replacement)

    for m in GLOBAL_RE.finditer(code):
        paren = m.end() - 1
        close = match_close(code, paren, "(", ")")
        if close < 0:
            fail(path, text, m.start(), "unbalanced parameter list of a __global__ function")
        j = close + 1
        while j < len(code) and code[j].isspace():
            j += 1
        if j < len(code) and code[j] == "{":
            bounds = m.group(1)
            if bounds is None:
                edits.append((j + 1, j + 1, f' CAE_EMU_KERNEL_ENTRY("{m.group(2)}")'))
            else:  # the first argument: the most threads per block the kernel was compiled for
                a, b = split_top(code, m.start(1), m.end(1))[0]
                edits.append((j + 1, j + 1, f' CAE_EMU_KERNEL_ENTRY_BOUNDED("{m.group(2)}", ({code[a:b].strip()}))'))

    for m in SHARED_RE.finditer(code):
        is_extern, align, typ, name, dims = m.group(1), m.group(2) or "alignof(" + m.group(3) + ")", m.group(3), m.group(4), m.group(5)
        if is_extern:
            repl = f"{typ}* const {name} = static_cast<{typ}*>(::cae_emu::shared_dynamic());"
        else:
            key = f"cae_emu_key_{name}"
            repl = (f"static const char {key} = 0; using cae_emu_type_{name} = {typ}{dims.strip()}; "
                    f"cae_emu_type_{name}& {name} = ::cae_emu::shared_array<cae_emu_type_{name}>(&{key}, {align});")
        edits.append((m.start(), m.end(), repl))

    pos = 0
    while True:
        lt = code.find("<<<", pos)
        if lt < 0:
            break
        gt = code.find(">>>", lt + 3)
        if gt < 0:
            fail(path, text, lt, "a <<< without >>>")
        start = kernel_expr_start(code, lt)
        if start < 0:
            fail(path, text, lt, "cannot find the kernel name before <<<")
        kernel = " ".join(code[start:lt].split())
        j = gt + 3
        while j < len(code) and code[j].isspace():
            j += 1
        if j >= len(code) or code[j] != "(":
            fail(path, text, gt, "a launch without an argument list after >>>")
        close = match_close(code, j, "(", ")")
        cfg = [code[a:b].strip() for a, b in split_top(code, lt + 3, gt)]
        if not 2 <= len(cfg) <= 4:
            fail(path, text, lt, f"a launch configuration of {len(cfg)} items")
        args = text[j + 1:close]
        has_args = code[j + 1:close].strip() != ""
        config = "::cae_emu::config(" + ", ".join(text[a:b].strip() for a, b in split_top(code, lt + 3, gt)) + ")"
        base = kernel.split("<")[0].strip().split("::")[-1]
        if base in template_kernels:
            # Template arguments not written are deduced from the call, as nvcc does (even after
            # explicit ones: k<false><<<...>>>(bf16_ptr) may deduce T = bf16). The attribute key is
            # the specialization the written arguments name, where they name one.
            key = f"&{kernel}" if "<" in kernel else "nullptr"
            call = (f"::cae_emu::launch_deduced([](const auto&... cae_emu_a) {{ {kernel}(cae_emu_a...); }}, "
                    f"::cae_emu::kernel_key({key}), \"{kernel}\", {config}{', ' if has_args else ''}")
        else:
            call = f"::cae_emu::launch({text[start:lt].strip()}, \"{kernel}\", {config}{', ' if has_args else ''}"
        # Keep the line count: the newlines of the replaced configuration go after the call.
        newlines = text[start:j + 1].count("\n")
        edits.append((start, j + 1, call + "\n" * newlines))
        pos = close

    edits.sort()
    out, last = [], 0
    for a, b, r in edits:
        if a < last:
            fail(path, text, a, "overlapping rewrites")
        out.append(text[last:a])
        # Keep every line where it was: replaced spans give back their newlines.
        out.append(r if r.count("\n") else r + "\n" * text[a:b].count("\n"))
        last = b
    out.append(text[last:])
    result = "".join(out)

    check = strip_comments(result)
    for token in ("<<<", "__shared__"):
        k = check.find(token)
        if k >= 0:
            fail(path, result, k, f"`{token}` survived the rewrite")
    for m in re.finditer(r"\basm\b", check):
        # Allowed only in a branch the emulator does not compile: after #else of #ifdef CAE_CUDA_EMULATOR.
        line_start = check.rfind("\n", 0, m.start()) + 1
        if not in_non_emulator_branch(check, line_start):
            fail(path, result, m.start(), "inline PTX outside an #ifdef CAE_CUDA_EMULATOR ... #else branch")
    return result


def in_non_emulator_branch(code, pos):
    """Whether pos lies in the #else part of an #ifdef CAE_CUDA_EMULATOR (or #ifndef part)."""
    stack = []
    for m in re.finditer(r"^[ \t]*#[ \t]*(ifdef|ifndef|if|else|elif|endif)\b(.*)$", code[:pos], re.M):
        d, rest = m.group(1), m.group(2).strip()
        if d in ("ifdef", "ifndef", "if"):
            stack.append([d, rest, False])
        elif d in ("else", "elif") and stack:
            stack[-1][2] = True
        elif d == "endif" and stack:
            stack.pop()
    for d, rest, in_else in stack:
        if rest.startswith("CAE_CUDA_EMULATOR") and ((d == "ifdef" and in_else) or (d == "ifndef" and not in_else)):
            return True
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--kernels")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    texts = {}
    for f in a.files:
        with open(os.path.join(a.src, f), encoding="utf-8") as fh:
            texts[f] = fh.read()
    template_kernels, all_kernels = set(), {}
    for f, t in texts.items():
        code = strip_comments(t)
        template_kernels.update(m.group(1) for m in TEMPLATE_KERNEL_RE.finditer(code))
        for m in GLOBAL_RE.finditer(code):
            all_kernels.setdefault(m.group(2), f)
    for f, t in texts.items():
        out = rewrite(f, t, template_kernels)
        dst = os.path.join(a.out, f + (".cpp" if f.endswith(".cu") else ""))  # g++ compiles .cpp as C++
        os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
        old = None
        if os.path.exists(dst):
            with open(dst, encoding="utf-8") as fh:
                old = fh.read()
        if old != out:  # unchanged outputs keep their time stamps: no needless recompiles
            with open(dst, "w", encoding="utf-8") as fh:
                fh.write(out)
    if a.kernels:
        body = "".join(f'    {{"{k}", "{f}"}},\n' for k, f in sorted(all_kernels.items()))
        content = ("// Generated by rewrite_cuda.py: every __global__ function of src/cuda and its file.\n"
                   "#pragma once\n\nstruct CaeEmuKernelName {\n    const char* name;\n    const char* file;\n};\n"
                   f"inline constexpr CaeEmuKernelName kCaeEmuKernels[] = {{\n{body}}};\n")
        old = open(a.kernels).read() if os.path.exists(a.kernels) else None
        if old != content:
            with open(a.kernels, "w") as fh:
                fh.write(content)


if __name__ == "__main__":
    main()
