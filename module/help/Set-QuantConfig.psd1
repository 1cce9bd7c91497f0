# Help for Set-QuantConfig; see _Template.psd1 for the format and build/New-ModuleHelp.ps1 for how it is checked.
@{
    Synopsis     = 'Plans which modules become NVFP4 or FP8, and the KV cache, from a recipe.'

    Description  = @'
Set-QuantConfig applies a quantization recipe to every quantizer of a model from Import-HFModel, attaches the resulting
plan to the model (its Plan property) and passes the model on down the pipeline, to Invoke-Calibration and
Export-Nvfp4.

The recipe is a built-in preset (-Preset, NVFP4_DEFAULT when nothing is given) or a recipe file in NVIDIA ModelOpt's
quant_cfg format, JSON or YAML (-RecipePath), so an existing ModelOpt recipe means the same thing here. A recipe is an
ordered list of entries; each entry's fnmatch pattern is tried against every quantizer name
(<module>.weight_quantizer, <module>.input_quantizer, and the per-expert quantizers of fused experts), and later
entries win. Every preset ends with ModelOpt's default-disabled list (lm_head, routers and expert gates, vision towers,
MTP heads, linear-attention convolutions, ...), and embeddings, norms and routers are never quantized.

A recipe may mix formats as ModelOpt's do: NVFP4 weights with NVFP4 activations (W4A4) or none (W4A16_NVFP4), and FP8
per-tensor weights with FP8 activations; a plan with several formats is MIXED_PRECISION. It also decides the KV cache
(ModelOpt's '*[kv]_bmm_quantizer' quantizers of each softmax-attention layer), which -KvCache overrides.

-Include and -Exclude add module-name patterns after the recipe: -Include quantizes more modules, -Exclude keeps
modules in the source dtype and is applied last, so it wins over everything.

Get-QuantPlan lists the decision for each module and the recipe entry that made it. The plan is checked before it is
attached, and what looks half-applied is a warning: modules left unquantized while their siblings are quantized (the
same projection in other layers, or other experts of the same layer), modules NVFP4 cannot hold, routers a pattern
tried to quantize, and recipe-file entries or -Include patterns that match nothing. A plan that quantizes no module at
all is an error unless -AllowEmptyPlan is given, because its export would be a copy of the source labelled as NVFP4.
'@

    Parameters   = @{
        InputObject    = @'
The model from Import-HFModel. Its Plan property is replaced by the new plan (the same object is passed on), so running
Set-QuantConfig again on a model re-plans it.
'@
        Preset         = @'
The built-in recipe to apply. NVFP4_DEFAULT quantizes the weights and activations (W4A4) of every eligible Linear and
expert; NVFP4_MLP_ONLY only the MLP and expert projections; NVFP4_EXPERTS_ONLY only the MoE experts; NVFP4_OMLP_ONLY
the attention output projections and the MLPs; W4A16_NVFP4 the weights of every eligible module, with activations left
unquantized (no calibration needed). Two more reproduce NVIDIA's published Qwen3.5/3.6 checkpoints:
NVFP4_EXPERTS_ONLY_KV_FP8_CAST (nvidia/Qwen3.5-397B-A17B-NVFP4: W4A4 NVFP4 on the routed experts only, FP8 KV cache)
and W4A16_NVFP4_FP8_ATTN_KV_FP8_CAST (nvidia/Qwen3.6-35B-A3B-NVFP4, MIXED_PRECISION: NVFP4 weights on the MLPs, shared
and routed experts and lm_head, FP8 weights and activations on self-attention q/k/v/o and linear-attention
in_proj_qkv, in_proj_z and out_proj, FP8 KV cache, MTP and vision unquantized). Presets are the ones ModelOpt defines,
with its default-disabled list. Press Tab to complete the names; case does not matter.
'@
        RecipePath     = @'
A recipe file in ModelOpt's quant_cfg format (.yaml, .yml or .json): the list form (- quantizer_name, enable, cfg with
num_bits and block_sizes, optional parent_class), the older mapping form, a whole ModelOpt recipe with a quantize or
quant_cfg section, and ModelOpt's $import of units (resolved beside the file, or from the built-in copies of
base_disable_all, default_disabled_quantizers, the nvfp4 and fp8 numerics, the kv_fp8 and kv_fp8_cast units and
ModelOpt's Qwen3.5 w4a16_nvfp4-fp8_attn-kv_fp8_cast quant_cfg). ModelOpt's two-document unit form (an imports header,
---, then the list) and its recipe form (imports, metadata, quantize with algorithm and quant_cfg) load unchanged. The
file's algorithm (default max) decides the NVFP4 weights' block scales: max, mse (with or without fp8_scale_sweep:
true), local_hessian and gptq (with perc_damp and block_size) in ModelOpt's spellings; another one (awq_lite,
smoothquant, ...) is the error UnsupportedCalibrationAlgorithm. Relative paths are resolved against the current
location.
'@
        KvCache        = @'
The KV cache, applied after the recipe and -Include/-Exclude: None (unquantized), Fp8Cast (FP8 with the amax pinned to
448, no k/v scales written, engines use scale 1.0: ModelOpt's default kv_fp8_cast) or Fp8Scaled (FP8 with a k_scale
and v_scale per attention layer, amax / 448 from calibration: ModelOpt's kv_fp8). Without it the recipe decides (its
'*[kv]_bmm_quantizer' entries). Only softmax-attention layers of the language model have a KV cache; linear-attention
layers, the MTP head and the vision tower do not. -Include and -Exclude never change the KV cache.
'@
        Algorithm      = @'
How the NVFP4 weights get their block scales; it overrides the recipe's algorithm and does not change the output
format (packed E2M1 codes, E4M3 block scales, one weight_scale_2 from the group's max |w|), so every engine loads the
result. Max: each block's scale from its own max |w| (ModelOpt's max, the default). Mse: per block the multiple of
its max (0.25 to 4.0, step 0.1) with the least squared error (ModelOpt's mse). MseFp8Sweep: per block the E4M3 scale,
of all 126 positive ones, with the least squared error (ModelOpt's mse with fp8_scale_sweep). LocalHessian: the same
sweep weighing the error by the block's input statistics (ModelOpt's local_hessian). Gptq: layer by layer, quantizes
column blocks and moves the rounding error onto the columns not yet quantized (ModelOpt's gptq, perc_damp 0.01,
block_size 128). Max, Mse and MseFp8Sweep need no data for the weights; LocalHessian and Gptq need Invoke-Calibration
(also for weight-only plans), and Export-Nvfp4 refuses them without it. FP8 and unquantized modules are not affected.
Get-QuantPlan shows the algorithm of each module.
'@
        Include        = @'
Module-name patterns (fnmatch: * matches across dots, case-sensitive), for example '*.self_attn.o_proj', whose modules
are quantized in addition to what the recipe chose. They are applied after the recipe and win over it, but not over
-Exclude. Routers, embeddings and norms stay unquantized whatever the patterns say (a router that a pattern enables is
a warning), as does a module whose input size is not a multiple of 16 (also a warning).
'@
        Exclude        = @'
Module-name patterns (fnmatch, as for -Include) whose modules stay in the source dtype. They are applied last and win
over the recipe and -Include. Excluded modules are listed in the exported checkpoint's exclusion list.
'@
        AllowEmptyPlan = @'
Accept a plan that quantizes no module. Without it such a plan is the error PlanQuantizesNothing, since exporting it
would write a copy of the source with a quantization config that lies.
'@
    }

    Inputs       = @{
        'ModelOptPS.Engine.Model.HFModel' = 'A model from Import-HFModel (or one that already has a plan, to re-plan it).'
    }

    Outputs      = @{
        'ModelOptPS.Engine.Model.HFModel' = @'
The same model with its Plan property set. The model's summary shows the plan in one line (recipe, modules quantized
out of all, scheme and warning count); Get-QuantPlan shows it module by module.
'@
    }

    Examples     = @(
        @{
            Title   = 'Plan the default NVFP4 quantization'
            Code    = @'
$model = Import-HFModel ./ckpt | Set-QuantConfig -Preset NVFP4_DEFAULT
$model.Plan.Summary
'@
            Remarks = @'
Plans W4A4 NVFP4 for every eligible module. The summary says how many modules are quantized, in which scheme; the
plan needs calibration (Invoke-Calibration) before Export-Nvfp4.
'@
        }
        @{
            Title   = 'Weights only, attention kept unquantized'
            Code    = @'
Import-HFModel ./ckpt |
    Set-QuantConfig -Preset W4A16_NVFP4 -Exclude '*.self_attn.*' |
    Get-QuantPlan -Decision W4A16Nvfp4
'@
            Remarks = @'
W4A16_NVFP4 needs no calibration. -Exclude keeps every attention module unquantized; Get-QuantPlan lists the modules
that will be NVFP4.
'@
        }
        @{
            Title   = 'Experts plus the attention output projections'
            Code    = @'
Import-HFModel ./ckpt |
    Set-QuantConfig -Preset NVFP4_EXPERTS_ONLY -Include '*.self_attn.o_proj'
'@
            Remarks = @'
-Include adds the attention output projections to what the preset chose; like the experts, they get NVFP4 weights
and activations (W4A4).
'@
        }
        @{
            Title   = 'NVIDIA''s Qwen3.6-35B-A3B-NVFP4 recipe, with calibrated KV scales'
            Code    = @'
$model = Import-HFModel ./ckpt |
    Set-QuantConfig -Preset W4A16_NVFP4_FP8_ATTN_KV_FP8_CAST -KvCache Fp8Scaled
$model.Plan.Summary
$model | Get-QuantPlan -KvCache
'@
            Remarks = @'
MIXED_PRECISION: NVFP4 weights on the MLPs, experts and lm_head, FP8 on the attention projections (on a Qwen3.5/3.6
checkpoint also on the large linear-attention projections, as nvidia/Qwen3.6-35B-A3B-NVFP4 has them). -KvCache
Fp8Scaled replaces the preset's FP8 cast KV cache with one whose k/v scales come from calibration; Get-QuantPlan
-KvCache lists the attention layers that have a KV cache.
'@
        }
        @{
            Title   = 'Weights by the MSE FP8-scale sweep, no calibration needed'
            Code    = @'
Import-HFModel ./ckpt |
    Set-QuantConfig -Preset W4A16_NVFP4 -Algorithm MseFp8Sweep |
    Export-Nvfp4 -Path ./ckpt-nvfp4
'@
            Remarks = @'
Each 16-element block gets the E4M3 scale with the least squared error instead of the one from its max |w|. The
output format is unchanged, so engines load it as any NVFP4 checkpoint. With -Algorithm LocalHessian or Gptq, pipe
the model through Invoke-Calibration before Export-Nvfp4.
'@
        }
        @{
            Title   = 'Use a ModelOpt recipe file'
            Code    = @'
@"
quant_cfg:
  - quantizer_name: '*'
    enable: false
  - quantizer_name: '*mlp.experts*weight_quantizer'
    cfg: {num_bits: e2m1, block_sizes: {-1: 16, type: dynamic, scale_bits: e4m3}}
"@ | Set-Content ./experts-w4a16.yaml
Import-HFModel ./ckpt | Set-QuantConfig -RecipePath ./experts-w4a16.yaml |
    Get-QuantPlan -Decision W4A16Nvfp4
'@
            Remarks = @'
A recipe in ModelOpt's quant_cfg list form: disable everything, then NVFP4 weights (E2M1 values, blocks of 16 with E4M3
scales) for the MoE experts only. Since no input quantizer is enabled, the plan is weight-only (W4A16_NVFP4).
'@
        }
    )

    Notes        = @'
Errors are non-terminating, one per model. Error ids: UnknownPreset, RecipeFileNotFound, RecipeInvalid,
RecipeImportNotFound, QuantizerWithoutFormat, UnsupportedQuantizerFormat, PlanQuantizesNothing,
Fp8WithoutInputQuantizer (FP8 weights need FP8 inputs), FusedExpertsFormatsMixed (the experts of one fused container in
different formats), UnsupportedKvCacheFormat (a KV-cache quantizer that is not FP8 per tensor), KvCacheModesMixed (some
KV-cache quantizers cast, others scaled), UnsupportedCalibrationAlgorithm (a recipe file whose algorithm is not
max, mse, local_hessian or gptq, such as awq_lite or smoothquant, or one of those with settings not implemented),
MergedLayerPartiallyQuantized (the recipe quantizes only some shards of a layer vLLM loads as one, such as q/k/v,
gate/up or linear_attn.in_proj_qkv + in_proj_z, or gives them different formats; the message names the layer and the
-Include/-Exclude patterns that decide all its shards alike).
Any step may also write the shared ids AccessDenied, FileNotFound, FileSystemError (non-terminating) and
NativeError, OutOfMemory, InternalError (terminating); see about_ModelOptPS.

Matching follows ModelOpt: later entries win; a plural per-expert quantizer name (gate_up_proj_weight_quantizers.3) is
also tried in its singular form without the index, so patterns such as '*weight_quantizer' reach fused experts too.

-Verbose tells which recipe is applied, with how many entries, and summarises the plan.
'@

    RelatedLinks = @('Get-QuantPlan', 'Import-HFModel', 'Invoke-Calibration', 'Export-Nvfp4', 'about_ModelOptPS')
}
