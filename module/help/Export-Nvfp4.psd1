# Help for Export-Nvfp4; see _Template.psd1 for the format and build/New-ModuleHelp.ps1 for how it is checked.
@{
    Synopsis     = 'Writes a planned (and, for W4A4, calibrated) model as an NVFP4 checkpoint.'

    Description  = @'
Export-Nvfp4 writes the model it receives from Set-QuantConfig (and from Invoke-Calibration, for W4A4 plans) as a
Hugging Face checkpoint that vLLM, SGLang and TensorRT-LLM load unchanged, bit-identical to what NVIDIA ModelOpt
exports from the same model and calibration.

Every module the plan quantizes is written as NVFP4: packed E2M1 weights (two per byte), one E4M3 scale per block of 16,
an fp32 global scale (weight_scale_2) and, for W4A4, the calibrated input_scale. Scales that the inference engines
require to be shared are shared: every group of quantized Linears that read the same input tensor (found from the
model's forward plan: q_proj, k_proj and v_proj of one attention block, gate_proj and up_proj of one MLP or expert,
linear_attn.in_proj_qkv and in_proj_z, with in_proj_b and in_proj_a when quantized) gets one weight_scale_2 and one
input_scale, and all experts of a layer share their input scales. Fused experts (3-D gate_up_proj and down_proj) are split into
per-expert Linears, as the engines expect. Every other tensor is copied byte for byte, and so is every other file of
the source folder (tokenizer, generation config, chat template, licence). config.json gains a quantization_config;
the ModelOpt format also gets hf_quant_config.json with the exclusion list.

-Format CompressedTensors writes the compressed-tensors nvfp4-pack-quantized layout that llm-compressor produces (same
packed bytes and block scales, other tensor names, reciprocal global scales) instead.

The export is streamed - one tensor, or one expert slice, in memory at a time - and safe: it is written into a hidden
sibling folder (.<name>.partial-<id>) that is renamed into place only when complete, and the source folder is never
written to. Every export ends with a manifest, .modeloptps-export.json, listing the files it wrote and their sizes;
the engines, tokenizers and Test-QuantFormat ignore it. An existing non-empty output folder is refused unless -Force is
given, and -Force replaces only an empty folder or a previous export that still holds exactly what its manifest lists:
a folder with anything else in it (a file of yours, a file you edited) is the error TargetNotAnExport, and nothing in it
is touched. A replaced export stays in place until the new one is complete and comes back if the swap fails. If an
export is killed, the next export to the same folder puts back a previous export it finds moved aside, removes the
unfinished folders it left (only those provably its own), and reports both as warnings. -WhatIf shows what would be
written; Ctrl+C stops cleanly and leaves nothing behind. The same source and statistics always give byte-identical
files.

Nothing falls back silently: a W4A4 plan without calibration statistics is the error CalibrationRequired (run
Invoke-Calibration, or plan with -Preset W4A16_NVFP4), and a plan that quantizes nothing is an error too. The NVFP4
weights are quantized by the plan's algorithm (Set-QuantConfig -Algorithm): Max, Mse and MseFp8Sweep need no data;
LocalHessian and Gptq need Invoke-Calibration even for a weight-only plan.
'@

    Parameters   = @{
        InputObject  = @'
The model to export: from Set-QuantConfig for weight-only plans (W4A16_NVFP4), from Invoke-Calibration for W4A4 plans,
whose input scales need the calibration statistics.
'@
        Path         = @'
The output folder. It must not exist or be empty, unless -Force is given and it is a previous export; it must not be
inside the source checkpoint (or contain it). Relative paths are resolved against the current PowerShell location.
'@
        Format       = @'
The checkpoint layout. ModelOpt: ModelOpt's Hugging Face format (weight, weight_scale, weight_scale_2, input_scale,
hf_quant_config.json, quant_method modelopt). CompressedTensors: the compressed-tensors nvfp4-pack-quantized format
(weight_packed, weight_scale, weight_global_scale, input_global_scale; quant_method compressed-tensors).
'@
        MaxShardSize = @{
            Description = @'
The largest safetensors shard, in bytes (PowerShell's 5GB and 500MB literals work). A checkpoint larger than this is
written as model-0000i-of-0000N.safetensors shards with model.safetensors.index.json; a smaller one as a single
model.safetensors. The default is transformers' and ModelOpt's 10 GB (10,000,000,000 bytes).
'@
            Default     = '10000000000 (10 GB)'
        }
        ScaleOrder   = @'
The floating-point operation order of the global scale amax / (6 * 448). Cuda (the default) multiplies by the
reciprocal, as PyTorch does on a GPU and as real ModelOpt checkpoints were computed; Cpu divides exactly, as PyTorch
does on the CPU, for comparing with a ModelOpt export made on the CPU. The two differ in the last bit for some values.
'@
        Force        = @'
Replace a previous export of this tool: a folder that holds exactly the files its .modeloptps-export.json lists, at
their sizes, and nothing else. Any other non-empty folder is refused (TargetNotAnExport) and left untouched. The previous
export is moved aside only once the new checkpoint is complete, and removed once the new one is in place.
'@
    }

    Inputs       = @{
        'ModelOptPS.Engine.Model.HFModel' = 'A model with a plan (and, for W4A4 plans, calibration statistics).'
    }

    Outputs      = @{
        'ModelOptPS.Engine.Export.ExportResult' = @'
What was written: Path, SourcePath, Format, QuantAlgo (NVFP4, W4A16_NVFP4, FP8, or MIXED_PRECISION when the plan uses
several), KvCacheQuantAlgo (FP8 for a quantized KV cache, else null), Files (the checkpoint's files; the
.modeloptps-export.json manifest aside), SourceSize, OutputSize, SizeRatio, TensorCount, QuantizedModules (per expert
for fused experts), ExcludedModules (the exclusion list written into the config), Warnings (including what was
recovered or cleaned up after an interrupted export) and Duration. Nothing is returned with -WhatIf.
'@
    }

    Examples     = @(
        @{
            Title   = 'Quantize to NVFP4 (W4A4) and verify'
            Code    = @'
Import-HFModel ./ckpt | Set-QuantConfig -Preset NVFP4_DEFAULT |
    Invoke-Calibration | Export-Nvfp4 ./out
Test-QuantFormat ./out -Reference ./ckpt -Quiet
'@
            Remarks = @'
The whole job: plan, calibrate the activation scales on the built-in corpus, write the ModelOpt NVFP4 checkpoint to
./out, then check it against the checkpoint contract and the source ($true when it passes).
'@
        }
        @{
            Title   = 'Export the weights only, with no calibration'
            Code    = @'
Import-HFModel ./ckpt | Set-QuantConfig -Preset W4A16_NVFP4 |
    Export-Nvfp4 ./out-w4a16
'@
            Remarks = @'
W4A16_NVFP4 quantizes the weights only, so no calibration is needed. The result object shows the files written, the
size before and after, and the modules quantized and excluded.
'@
        }
        @{
            Title   = 'See what would be written'
            Code    = @'
Import-HFModel ./ckpt | Set-QuantConfig -Preset W4A16_NVFP4 |
    Export-Nvfp4 ./out -WhatIf
'@
            Remarks = @'
Prints the format, the plan summary and the target folder, and writes nothing.
'@
        }
        @{
            Title   = 'Write compressed-tensors in small shards'
            Code    = @'
$model = Import-HFModel ./ckpt | Set-QuantConfig -Preset W4A16_NVFP4
$model | Export-Nvfp4 ./out-ct -Format CompressedTensors -MaxShardSize 5MB -Force
Get-ChildItem ./out-ct
'@
            Remarks = @'
Writes the layout llm-compressor produces, in shards of at most 5 MB with an index file. -Force replaces ./out-ct if an
earlier export left it there (and refuses it if it holds anything the export did not write).
'@
        }
    )

    Notes        = @'
Errors are non-terminating, one per model, and leave no output folder behind. Error ids: NoQuantPlan,
PlanQuantizesNothing, CompressedTensorsFormatUnsupported (-Format CompressedTensors for a plan with FP8 modules, mixed
formats or a quantized KV cache: export those with -Format ModelOpt), CalibrationRequired (names the scales that need
it: NVFP4 or FP8 input scales, k/v scales of a scaled FP8 KV cache, weights by LocalHessian or Gptq),
WeightCalibrationMissing (a LocalHessian or Gptq plan whose calibration lacks the Hessian blocks or GPTQ solutions, or
was run for another plan), InputAmaxMissing, InputAmaxInvalid,
KvCacheAmaxMissing (a scaled FP8 KV cache whose k/v quantizer has no calibrated amax), InputSharingUnknown (a known family whose decoder layers cannot be planned,
so the Linears that must share scales are not known; an unknown family shares by the consumers' merged-layer names,
with a warning), TargetOverlapsSource, TargetExists, TargetIsFile, TargetNotAnExport (-Force onto a
folder that is not a previous export, naming what else it holds), ExportDiskFull (the target's disk ran out of space;
the unfinished files are removed), ExportWriteFailed (any other failure to write, rename or remove there), ModelDisposed
(the model was disposed before the export read it), and from the numerics NonFiniteWeight (a NaN or infinite weight,
named), InvalidGlobalAmax, InvalidInputAmax and WeightScaleUnderflow.
Any step may also write the shared ids AccessDenied, FileNotFound, FileSystemError (non-terminating) and
NativeError, OutOfMemory, InternalError (terminating); see about_ModelOptPS.

The export also fills in a null or missing config.json architectures entry from model_type, with a warning, since the
engines need it to pick the model class.

Progress is reported with Write-Progress (bytes written, current tensor); -Verbose tells the format, scale order and
shard size, and summarises what was written.
'@

    RelatedLinks = @('Set-QuantConfig', 'Invoke-Calibration', 'Test-QuantFormat', 'Get-QuantPlan', 'about_ModelOptPS')
}
