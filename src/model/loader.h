// Builds the decoder's blocks from a checkpoint, naming tensors as the architecture's
// description says and checking every shape against the config.
#pragma once

#include <memory>
#include <vector>

#include "io/safetensors.h"
#include "model/blocks.h"
#include "model/manifest.h"

namespace moeq {

struct DecoderWeights {
  Linear embedding;  // [vocab, hidden], looked up with LinearOp::weight_rows
  std::vector<Layer> layers;
  Norm final_norm;
  Linear lm_head;
};

// `manifest` (nullable) names the linears stored quantized; the others load as dense ops.
DecoderWeights load_weights(const ModelConfig& config, std::shared_ptr<const Checkpoint> checkpoint,
                            DenseStorage storage, const QuantManifest* manifest = nullptr);

}  // namespace moeq
