# Independent check of a moeq quantized folder: unpacks its INT tensors (GPTQ v2 layout,
# docs/FORMATS.md) to fp32 with PyTorch, loads the result with transformers and prints the
# WikiText-2 perplexity under ../shared/README.md's protocol (512-token windows, fp32, TF32 off).
# Runs where torch + transformers are (the GPU machine); INT formats, with AWQ input scales and
# per-token INT8 activations ("act_bits": 8, docs/RECIPES.md) applied by forward hooks.
# Usage: python3 torch_eval_quantized.py QUANTIZED_DIR wikitext2_test.ids.int32
import glob
import json
import math
import os
import sys
import tempfile

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.set_float32_matmul_precision('highest')


def unpack(words, bits, count):
    """int32 words [W, cols] holding a bit stream along dim 0 -> codes [count, cols]."""
    w = words.to(torch.int64) & 0xFFFFFFFF
    bit = torch.arange(count) * bits
    lo, shift = bit // 32, bit % 32
    hi = torch.clamp(lo + 1, max=w.shape[0] - 1)
    value = (w[lo] >> shift[:, None]) | (w[hi] << (32 - shift)[:, None])
    return value & ((1 << bits) - 1)


def dequantized_state_dict(folder):
    config = json.load(open(os.path.join(folder, 'config.json')))
    specs = config.pop('quantization_config')['tensors']
    stored = {}
    for f in sorted(glob.glob(os.path.join(folder, '*.safetensors'))):
        stored.update(load_file(f))
    out = {}
    for name, t in stored.items():
        if name.endswith(('.qzeros', '.scales', '.g_idx', '.input_scale')):
            continue
        if not name.endswith('.qweight'):
            out[name] = t.to(torch.float32)
            continue
        prefix = name[:-len('.qweight')]
        spec = specs[prefix + '.weight']
        bits = spec['bits']
        scales, g_idx = stored[prefix + '.scales'].to(torch.float32), stored[prefix + '.g_idx'].to(torch.int64)
        codes = unpack(t, bits, g_idx.numel())                                                      # [in, out]
        zeros = unpack(stored[prefix + '.qzeros'].t().contiguous(), bits, scales.shape[1]).t()  # [groups, out]
        w = (codes - zeros[g_idx]).to(torch.float32) * scales[g_idx]
        if 'input_scale' in spec:  # AWQ: the op divides its input by s, so W = Q(W·diag(s))·diag(s)⁻¹
            w = w / stored[spec['input_scale']].to(torch.float32)[:, None]
        out[prefix + '.weight'] = w.t().contiguous()
    return config, out


def quantize_rows(x):
    """Each row to INT8 with its own scale max|x| / 127, rounded half to even, back to float."""
    s = x.abs().amax(-1, keepdim=True) / 127
    q = torch.round(x / torch.where(s > 0, s, torch.ones_like(s))).clamp(-127, 127)
    return q * s


quantized_linear_calls = 0
inside_quantized_experts = False
plain_linear = torch.nn.functional.linear


def linear_with_int8_inputs(x, *args, **kwargs):
    """F.linear as fused experts modules call it: rows quantized while such a module runs."""
    global quantized_linear_calls
    if inside_quantized_experts:
        quantized_linear_calls += 1
        x = quantize_rows(x)
    return plain_linear(x, *args, **kwargs)


def set_inside(value):
    def hook(*_):
        global inside_quantized_experts
        inside_quantized_experts = value
    return hook


def hook_int8_activations(model, specs):
    """Quantize the inputs of every linear whose entry says act_bits 8. An nn.Linear gets a
    pre-hook; experts fused into one module (transformers 5) quantize every F.linear they call,
    so all of that module's experts must be marked."""
    marked = {n[:-len('.weight')] for n, spec in specs.items() if spec.get('act_bits', 16) == 8}
    fused = {}
    for prefix in sorted(marked):
        try:
            module = model.get_submodule(prefix)
        except AttributeError:
            module = None
        if isinstance(module, torch.nn.Linear):
            module.register_forward_pre_hook(lambda _, args: (quantize_rows(args[0]),) + args[1:])
            continue
        parent = prefix.rsplit('.', 2)[0]  # "….experts.5.gate_proj" -> "….experts"
        try:
            module = model.get_submodule(parent)
        except AttributeError:
            module = None
        if 'Experts' not in type(module).__name__:
            sys.exit(f'{prefix}: neither an nn.Linear nor an expert of a fused experts module')
        fused.setdefault(parent, set()).add(prefix)
    for parent, members in fused.items():
        inside = {n[:-len('.weight')] for n in specs if n.startswith(parent + '.')}
        if members != inside:
            sys.exit(f'{parent}: act_bits 8 on {len(members)} of its {len(inside)} linears; fused experts need all')
        module = model.get_submodule(parent)
        module.register_forward_pre_hook(set_inside(True))
        module.register_forward_hook(set_inside(False))
    if fused:
        torch.nn.functional.linear = linear_with_int8_inputs
    return len(marked), len(fused)


def main():
    folder, ids_file = sys.argv[1], sys.argv[2]
    config, state = dequantized_state_dict(folder)
    specs = json.load(open(os.path.join(folder, 'config.json')))['quantization_config']['tensors']
    tmp = tempfile.mkdtemp()
    save_file(state, os.path.join(tmp, 'model.safetensors'), metadata={'format': 'pt'})
    json.dump(config, open(os.path.join(tmp, 'config.json'), 'w'))
    # The eager experts backend calls F.linear per expert, where the INT8 inputs are applied.
    model = AutoModelForCausalLM.from_pretrained(tmp, dtype=torch.float32,
                                                 experts_implementation='eager').cuda().eval()
    linears, fused = hook_int8_activations(model, specs)
    ids = torch.frombuffer(bytearray(open(ids_file, 'rb').read()), dtype=torch.int32).to(torch.int64)
    windows = ids[: ids.numel() // 512 * 512].view(-1, 512).cuda()
    nll = 0.0
    with torch.no_grad():
        for b in range(0, windows.shape[0], 32):
            x = windows[b:b + 32]
            logp = torch.log_softmax(model(x).logits.float()[:, :-1], -1).gather(-1, x[:, 1:, None])
            nll -= logp.double().sum().item()
    predicted = windows.shape[0] * 511
    print(json.dumps({'ppl': math.exp(nll / predicted), 'nll_sum': nll, 'windows': windows.shape[0],
                      'int8_input_linears': linears, 'fused_experts_modules': fused,
                      'int8_fused_calls': quantized_linear_calls}))


if __name__ == '__main__':
    main()
