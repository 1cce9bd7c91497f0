using System.Management.Automation;
using ModelOptPS.Engine.Model;

namespace ModelOptPS.Cmdlets;

/// <summary>
/// <para type="synopsis">Opens a Hugging Face checkpoint folder as a live model object.</para>
/// <para type="description">Reads config.json, the shard index and every safetensors header (not the tensor data,
/// which stays memory-mapped on disk) and returns the model: its architecture, layers, experts, parameter count,
/// dtype, size, and every module as an object.</para>
/// </summary>
[Cmdlet(VerbsData.Import, "HFModel")]
[OutputType(typeof(HFModel))]
public sealed class ImportHFModelCommand : ModelOptCmdlet
{
    /// <summary>The checkpoint folder(s). Accepts strings and DirectoryInfo objects from the pipeline.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    public string[] Path { get; set; } = [];

    protected override void ProcessRecord()
    {
        foreach (var path in Path)
        {
            string folder = ResolvePath(path);
            WriteVerbose($"Reading checkpoint '{folder}' (config.json, index, safetensors headers; tensor data stays on disk).");
            RunEngine($"Reading the checkpoint '{folder}'", folder, () =>
            {
                var model = ModelImporter.Import(folder);
                WriteVerbose($"{model.Name}: {model.Architecture ?? "unknown architecture"} ({model.ArchitectureSource}); " +
                             $"{model.ShardCount} shard(s), {model.TensorCount} tensors, {model.Modules.Count} modules: {model.ModuleSummary}.");
                foreach (var warning in model.Warnings) WriteWarning($"{model.Name}: {warning}.");
                WriteObject(model);
            });
        }
    }
}
