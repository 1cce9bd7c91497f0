# Help for Get-QuantPlan; see _Template.psd1 for the format and build/New-ModuleHelp.ps1 for how it is checked.
@{
    Synopsis     = 'Lists a model''s quantization plan: each module''s decision and why.'

    Description  = @'
Get-QuantPlan shows the plan that Set-QuantConfig attached to a model, one object per module: its name, kind, section,
layer, shape, the decision, and the reason - the recipe entry that decided it (its position, pattern and where it came
from: the preset, the default-disabled list, the recipe file, -Include or -Exclude), or that no entry matched, or why the
module's kind is never quantized. So you can see why a module is or is not quantized without reading any code.

Decisions: Nvfp4 (NVFP4 weights and activations, W4A4), W4A16Nvfp4 (NVFP4 weights only), Fp8 (FP8 E4M3 weights and
activations, one scale per tensor), Unquantized (kept in the source dtype), Unquantizable (wanted by the recipe but impossible, such as an input size that is not a multiple of 16;
kept and listed in the exclusions), and Mixed (a fused-experts container whose experts or projections were decided
differently; see -ExpertUnits).

-Name, -Decision and -Kind filter the list; all given filters must match. With -ExpertUnits, each fused-experts
container (the 3-D gate_up_proj and down_proj tensors of Qwen3.5-MoE style checkpoints) is listed per expert and
projection instead of as one row. With -KvCache, the KV cache is listed instead of the modules: one row per
softmax-attention layer of the language model, with its mode (None, Fp8Cast or Fp8Scaled), where the k/v scales are
written, and the recipe entries that decided it. The plan's one-line summary ($model.Plan.Summary) names the KV cache
too.
'@

    Parameters   = @{
        InputObject = @'
A model that went through Set-QuantConfig. A model without a plan is the error NoQuantPlan.
'@
        Name        = @'
Only modules whose full name matches one of these wildcard patterns (PowerShell wildcards, case-insensitive), for
example '*.layers.0.*' or 'lm_head'.
'@
        Decision    = @'
Only modules with one of these decisions: Nvfp4, W4A16Nvfp4, Fp8, Unquantized, Unquantizable, Mixed. With -ExpertUnits the
filter applies to each expert projection.
'@
        Kind        = @'
Only modules of these kinds: Linear, FusedExperts, Router, Embedding, Norm, Conv, Other.
'@
        ExpertUnits = @'
List fused experts per expert and projection (one ExpertUnitPlan each, with its own decision and reason) instead of one
row per container. Other modules are listed as usual.
'@
        KvCache     = @'
List the KV cache instead of the modules: one KvCacheLayer per attention layer that has a KV cache (linear-attention
layers, the MTP head and the vision tower have none), with Attention (the attention block's name, which -Name filters),
Mode, Key and Value (the k_bmm_quantizer and v_bmm_quantizer states), KeyScaleName and ValueScaleName (the tensors a
scaled KV cache is exported to) and Reason.
'@
    }

    Inputs       = @{
        'ModelOptPS.Engine.Model.HFModel' = 'A model with a plan, from Set-QuantConfig.'
    }

    Outputs      = @{
        'ModelOptPS.Engine.Quantization.ModulePlan'     = @'
One per module: Name, Kind, Section, Layer, Expert, Shape, Decision, Reason, EntryPosition, EntryPattern, the
Quantizers with their states, and ExpertUnits for fused experts. The default view is a table with the deciding entry.
'@
        'ModelOptPS.Engine.Quantization.ExpertUnitPlan' = @'
With -ExpertUnits, one per expert and projection of a fused-experts container: Expert, Projection, Decision, Reason,
and the Weight and Input quantizer states.
'@
        'ModelOptPS.Engine.Quantization.KvCacheLayer'   = @'
With -KvCache, one per attention layer with a KV cache: Attention, Mode, Key, Value, KeyScaleName, ValueScaleName,
Reason. The default view is a table with the mode and the deciding entries.
'@
    }

    Examples     = @(
        @{
            Title   = 'See which modules stay unquantized, and why'
            Code    = @'
Import-HFModel ./ckpt | Set-QuantConfig -Preset NVFP4_DEFAULT |
    Get-QuantPlan -Decision Unquantized
'@
            Remarks = @'
The Entry column names the recipe entry that kept each module in the source dtype - for example '*lm_head*' from the
default-disabled list - or why its kind is never quantized (embeddings, norms, routers).
'@
        }
        @{
            Title   = 'Count the decisions per kind of module'
            Code    = @'
$model = Import-HFModel ./ckpt | Set-QuantConfig -Preset NVFP4_MLP_ONLY
$model | Get-QuantPlan | Group-Object Decision, Kind | Select-Object Count, Name
'@
            Remarks = @'
A quick check that a preset does what you expect: here the MLP and expert projections become Nvfp4 and attention stays
Unquantized.
'@
        }
        @{
            Title   = 'Look at one layer, with the reasons'
            Code    = @'
$model = Import-HFModel ./ckpt | Set-QuantConfig -Preset W4A16_NVFP4
Get-QuantPlan $model -Name '*.layers.0.*' |
    Format-Table Name, Kind, Decision, Reason -Wrap
'@
            Remarks = @'
The model can also be given by position. Reason is the full sentence behind the Entry column.
'@
        }
        @{
            Title   = 'See the FP8 modules and the KV cache of a mixed-precision plan'
            Code    = @'
$model = Import-HFModel ./ckpt | Set-QuantConfig -Preset W4A16_NVFP4_FP8_ATTN_KV_FP8_CAST
$model | Get-QuantPlan -Decision Fp8
$model | Get-QuantPlan -KvCache
'@
            Remarks = @'
The first command lists the attention projections planned as FP8; the second lists every attention layer's KV cache,
here Fp8Cast (FP8, no scales written) from the preset's '*[kv]_bmm_quantizer' entry.
'@
        }
        @{
            Title   = 'List fused experts per expert and projection'
            Code    = @'
$model = Import-HFModel ./ckpt | Set-QuantConfig -Preset NVFP4_EXPERTS_ONLY
$model | Get-QuantPlan -Kind FusedExperts -ExpertUnits |
    Format-Table Expert, Projection, Decision, Reason
'@
            Remarks = @'
For checkpoints that store experts fused (gate_up_proj [E, 2I, H] and down_proj [E, H, I], as Qwen3.5-MoE does), shows
the decision for every expert and projection. Checkpoints with one Linear per expert list nothing here; their experts
are ordinary Linear modules.
'@
        }
    )

    Notes        = @'
Error id: NoQuantPlan (non-terminating) for a model that has not been through Set-QuantConfig.
Any step may also write the shared ids AccessDenied, FileNotFound, FileSystemError (non-terminating) and
NativeError, OutOfMemory, InternalError (terminating); see about_ModelOptPS.

The plan's own summary is on the model: $model.Plan.Summary, $model.Plan.QuantizedCount, $model.Plan.QuantAlgo
(NVFP4, W4A16_NVFP4, FP8, or MIXED_PRECISION when several formats are used), $model.Plan.Formats, $model.Plan.KvCache,
$model.Plan.NeedsCalibration and $model.Plan.CalibratedQuantizers,
$model.Plan.Warnings, and $model.Plan.UnusedEntries for recipe entries that matched nothing.
'@

    RelatedLinks = @('Set-QuantConfig', 'Import-HFModel', 'Export-Nvfp4', 'about_ModelOptPS')
}
