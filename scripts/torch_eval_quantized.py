# Independent check of a moeq quantized folder: unpacks its INT tensors (GPTQ v2 layout,
# docs/FORMATS.md) to fp32 with PyTorch, loads the result with transformers and prints the
# WikiText-2 perplexity under ../shared/README.md's protocol (512-token windows, fp32, TF32 off).
# Runs where torch + transformers are (the GPU machine); INT formats, with AWQ input scales.
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


def main():
    folder, ids_file = sys.argv[1], sys.argv[2]
    config, state = dequantized_state_dict(folder)
    tmp = tempfile.mkdtemp()
    save_file(state, os.path.join(tmp, 'model.safetensors'), metadata={'format': 'pt'})
    json.dump(config, open(os.path.join(tmp, 'config.json'), 'w'))
    model = AutoModelForCausalLM.from_pretrained(tmp, dtype=torch.float32).cuda().eval()
    ids = torch.frombuffer(bytearray(open(ids_file, 'rb').read()), dtype=torch.int32).to(torch.int64)
    windows = ids[: ids.numel() // 512 * 512].view(-1, 512).cuda()
    nll = 0.0
    with torch.no_grad():
        for b in range(0, windows.shape[0], 32):
            x = windows[b:b + 32]
            logp = torch.log_softmax(model(x).logits.float()[:, :-1], -1).gather(-1, x[:, 1:, None])
            nll -= logp.double().sum().item()
    predicted = windows.shape[0] * 511
    print(json.dumps({'ppl': math.exp(nll / predicted), 'nll_sum': nll, 'windows': windows.shape[0]}))


if __name__ == '__main__':
    main()
