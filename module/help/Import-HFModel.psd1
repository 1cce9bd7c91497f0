# Help for Import-HFModel. build/New-ModuleHelp.ps1 turns this into MAML; types, positions, pipeline input, aliases and
# defaults come from the cmdlet itself. Examples run in a folder that holds a checkpoint at ./ckpt (see _Template.psd1).
@{
    Synopsis     = 'Opens a Hugging Face checkpoint folder as a live model object.'

    Description  = @'
Import-HFModel reads a Hugging Face checkpoint folder - config.json, the shard index (model.safetensors.index.json)
and the header of every safetensors shard - and returns an HFModel object: the architecture and family, the layer
count, routed experts and experts per token, the parameter count, the source dtype, the size on disk, and every module
(Linear, FusedExperts, Router, Embedding, Norm, ...) as an object you can filter with Where-Object.

Only headers are read. Tensor data stays memory-mapped on disk, so importing a checkpoint of many gigabytes takes well
under a second, and the folder is never written to.

The model object is the start of the ModelOptPS pipeline: pipe it to Set-QuantConfig to plan the quantization, then to
Invoke-Calibration (for W4A4 presets) and Export-Nvfp4.

Anything unusual (an architecture that is not known and was imported by generic Linear discovery, a null architectures
entry resolved from model_type, and so on) is written as a warning and kept in the model's Warnings property; nothing is
ignored silently. A folder that cannot be read is a non-terminating error with its own error id, and the cmdlet goes on
with the next folder.
'@

    Parameters   = @{
        Path = @'
The checkpoint folder or folders: each must hold config.json and either model.safetensors or the shards named by
model.safetensors.index.json. Relative paths are resolved against the current PowerShell location. Accepts strings
from the pipeline, and any object with a FullName property (such as the DirectoryInfo objects of Get-ChildItem
-Directory). Wildcards are not expanded: pipe Get-ChildItem to import several folders.
'@
    }

    Inputs       = @{
        'System.String' = @'
A checkpoint folder path. Objects with a FullName property, such as System.IO.DirectoryInfo from Get-ChildItem, bind
to -Path by property name.
'@
    }

    Outputs      = @{
        'ModelOptPS.Engine.Model.HFModel' = @'
One model per folder. The default view is a one-screen summary; Format-Table -View HFModelTable shows one line per
model. Modules lists every module with its name, kind, section, layer, expert and shape; Warnings lists what was
unusual; Plan and Statistics are filled in later by Set-QuantConfig and Invoke-Calibration.
'@
    }

    Examples     = @(
        @{
            Title   = 'Open a checkpoint and see its summary'
            Code    = @'
Import-HFModel ./ckpt
'@
            Remarks = @'
Reads config.json and the safetensors headers of the checkpoint in ./ckpt and shows the model summary: architecture,
family, layers, experts, parameters, dtype, size on disk and module counts per kind.
'@
        }
        @{
            Title   = 'Count the modules of each kind'
            Code    = @'
$model = Import-HFModel ./ckpt
$model.Modules | Group-Object Kind | Select-Object Count, Name
'@
            Remarks = @'
Modules are objects: group, filter or sort them like any other PowerShell objects. Only Linear modules and fused
experts can become NVFP4.
'@
        }
        @{
            Title   = 'Import every checkpoint under a folder'
            Code    = @'
Get-ChildItem -Directory |
    Where-Object { Test-Path (Join-Path $_.FullName 'config.json') } |
    Import-HFModel |
    Format-Table -View HFModelTable
'@
            Remarks = @'
DirectoryInfo objects bind to -Path through their FullName property. The HFModelTable view shows one line per model.
'@
        }
        @{
            Title   = 'Catch a bad checkpoint by its error id'
            Code    = @'
Import-HFModel ./no-such-checkpoint -ErrorAction SilentlyContinue -ErrorVariable problems
$problems[0].FullyQualifiedErrorId
'@
            Remarks = @'
Every problem is an ErrorRecord with its own error id (here CheckpointFolderNotFound) and category, naming the file
and what is wrong. Scripts and tests match on the id; the NOTES list all of them.
'@
        }
    )

    Notes        = @'
Errors are non-terminating (one per folder that cannot be read); use -ErrorAction Stop to stop at the first one. Error
ids: CheckpointFolderNotFound, ConfigNotFound, ConfigInvalid, NoWeightFiles, IndexInvalid, IndexShardMissing,
IndexHeaderMismatch, DuplicateTensorName, SafetensorsTruncated, SafetensorsHeaderTooLong, SafetensorsHeaderInvalid,
SafetensorsUnknownDType, SafetensorsShapeMismatch, SafetensorsSpanOutOfFile, SafetensorsOverlappingSpans, and
CheckpointAlreadyQuantized (InvalidOperation) for a checkpoint that is already quantized: an hf_quant_config.json, a
quantization_config in config.json (ModelOpt, compressed-tensors, FP8, block-FP8, GPTQ, AWQ, MXFP4, ...) or
U8/F8/I8/I32 weights next to scale tensors; the message names the format. Import its unquantized source instead.
Any step may also write the shared ids AccessDenied, FileNotFound, FileSystemError (non-terminating) and
NativeError, OutOfMemory, InternalError (terminating); see about_ModelOptPS.

Supported families: Llama, Qwen2, Qwen3, Qwen3-MoE, Qwen3-Next, Qwen3.5/3.6 (dense and MoE, fused experts on disk) and
Mixtral. Other architectures import through generic Linear discovery, with a warning.

-Verbose tells what is read and summarises the shards, tensors and modules found.
'@

    RelatedLinks = @('Set-QuantConfig', 'Get-QuantPlan', 'Export-Nvfp4', 'about_ModelOptPS')
}
