using System.Management.Automation;
using System.Reflection;
using System.Runtime.Loader;

namespace ModelOptPS.Cmdlets;

/// <summary>
/// Resolves the module's own dependencies (engine, YamlDotNet, TorchSharp…) from the module folder whenever they
/// are first needed. PowerShell only probes a binary module's folder while Import-Module runs; assemblies that load
/// lazily later (YamlDotNet on the first recipe file, TorchSharp on the first forward pass) would otherwise not be
/// found. Answers only for files that exist beside ModelOptPS.dll, so PowerShell's own assemblies always win.
/// </summary>
public sealed class ModuleAssemblyResolver : IModuleAssemblyInitializer, IModuleAssemblyCleanup
{
    private static readonly string ModuleFolder = Path.GetDirectoryName(typeof(ModuleAssemblyResolver).Assembly.Location)!;

    public void OnImport() => AssemblyLoadContext.Default.Resolving += Resolve;

    public void OnRemove(PSModuleInfo module) => AssemblyLoadContext.Default.Resolving -= Resolve;

    private static Assembly? Resolve(AssemblyLoadContext context, AssemblyName name)
    {
        if (name.Name is null) return null;
        string candidate = Path.Combine(ModuleFolder, name.Name + ".dll");
        return File.Exists(candidate) ? context.LoadFromAssemblyPath(candidate) : null;
    }
}
