using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using ModelOptPS.BannedScalarApis;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Tests.Torch;

/// <summary>
/// The RS0030 list (build/BannedSymbols.txt) is what the generator finds in the TorchSharp.dll these tests run on, and
/// it bans what creates a Scalar internally while leaving what only takes one.
/// </summary>
public sealed class BannedScalarApisTests
{
    private static readonly Lazy<IReadOnlyList<string>> Generated =
        new(() => ScalarCreatingApis.BannedSymbolLines(typeof(Tensor).Assembly.Location));

    private static HashSet<string> GeneratedIds() => Generated.Value.Select(line => line.Split(';')[0]).ToHashSet(StringComparer.Ordinal);

    [Fact]
    public void CommittedListIsTheOneGeneratedFromTorchSharpInUse()
    {
        string[] committed = File.ReadAllLines(BannedSymbolsFile.InRepository());
        var diff = Generated.Value.Except(committed).Select(line => "+ " + line)
            .Concat(committed.Except(Generated.Value).Select(line => "- " + line)).ToList();
        Assert.True(diff.Count == 0,
            "build/BannedSymbols.txt is not what TorchSharp.dll gives; regenerate it with " +
            "`dotnet run -c Release --project build/BannedScalarApis`:\n" + string.Join('\n', diff));
        Assert.Equal(Generated.Value, committed);
    }

    /// <summary>The analyzer silently ignores an ID that names nothing: each must resolve, as the analyzer resolves it.</summary>
    [Fact]
    public void EveryIdNamesATorchSharpMember()
    {
        var references = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(path => Path.GetFileName(path).StartsWith("System.", StringComparison.Ordinal) || Path.GetFileName(path) == "netstandard.dll")
            .Append(typeof(Tensor).Assembly.Location)
            .Select(path => MetadataReference.CreateFromFile(path));
        var compilation = CSharpCompilation.Create("BannedIds", references: references);
        var unresolved = GeneratedIds().Where(id => DocumentationCommentId.GetFirstSymbolForDeclarationId(id, compilation) is null).ToList();
        Assert.True(unresolved.Count == 0, "IDs that name no member:\n" + string.Join('\n', unresolved));
    }

    [Theory]
    [InlineData("M:TorchSharp.torch.Tensor.add(TorchSharp.torch.Tensor)")]
    [InlineData("M:TorchSharp.torch.Tensor.add(TorchSharp.Scalar)")]
    [InlineData("M:TorchSharp.torch.Tensor.square")]
    [InlineData("M:TorchSharp.torch.nn.functional.softplus(TorchSharp.torch.Tensor,System.Double,System.Double)")]
    [InlineData("M:TorchSharp.torch.Tensor.softplus(System.Double,System.Double)")]
    [InlineData("M:TorchSharp.torch.arange(TorchSharp.Scalar,System.Nullable{TorchSharp.torch.ScalarType},TorchSharp.torch.Device,System.Boolean)")]
    [InlineData("M:TorchSharp.torch.Tensor.op_Multiply(TorchSharp.torch.Tensor,System.Double)")]
    [InlineData("M:TorchSharp.torch.Tensor.op_Addition(TorchSharp.torch.Tensor,TorchSharp.torch.Tensor)")]
    [InlineData("M:TorchSharp.Scalar.op_Implicit(System.Double)~TorchSharp.Scalar")]
    [InlineData("M:TorchSharp.Scalar.op_Implicit(System.Single)~TorchSharp.Scalar")]
    [InlineData("M:TorchSharp.Scalar.op_Implicit(System.Int32)~TorchSharp.Scalar")]
    [InlineData("M:TorchSharp.Scalar.op_Implicit(System.Int64)~TorchSharp.Scalar")]
    [InlineData("M:TorchSharp.ScalarExtensionMethods.ToScalar(System.Double)")]
    [InlineData("M:TorchSharp.Modules.AdamW.step(System.Func{TorchSharp.torch.Tensor})")]
    // Overrides are reached through their base declaration (Optimizer.step, Module.call): their objects' factories are banned.
    [InlineData("M:TorchSharp.torch.optim.AdamW(System.Collections.Generic.IEnumerable{TorchSharp.Modules.Parameter},System.Double,System.Double,System.Double,System.Double,System.Double,System.Boolean,System.Boolean)")]
    [InlineData("M:TorchSharp.torch.nn.Softplus(System.Double,System.Double)")]
    [InlineData("P:TorchSharp.Modules.Normal.variance")]
    public void BansMembersThatCreateAScalar(string id) => Assert.Contains(id, GeneratedIds());

    [Theory]
    [InlineData("M:TorchSharp.torch.Tensor.add(TorchSharp.torch.Tensor,TorchSharp.Scalar)")]
    [InlineData("M:TorchSharp.torch.Tensor.add(TorchSharp.Scalar,TorchSharp.Scalar)")]
    [InlineData("M:TorchSharp.torch.Tensor.mul(TorchSharp.Scalar)")]
    [InlineData("M:TorchSharp.torch.Tensor.pow(TorchSharp.Scalar)")]
    [InlineData("M:TorchSharp.torch.arange(TorchSharp.Scalar,TorchSharp.Scalar,TorchSharp.Scalar,System.Nullable{TorchSharp.torch.ScalarType},TorchSharp.torch.Device,System.Boolean)")]
    [InlineData("M:TorchSharp.torch.Tensor.op_Multiply(TorchSharp.torch.Tensor,TorchSharp.torch.Tensor)")]
    [InlineData("M:TorchSharp.torch.nn.Linear(System.Int64,System.Int64,System.Boolean,TorchSharp.torch.Device,System.Nullable{TorchSharp.torch.ScalarType})")]
    [InlineData("M:TorchSharp.torch.optim.Optimizer.zero_grad")]
    public void LeavesMembersThatOnlyTakeAScalar(string id) => Assert.DoesNotContain(id, GeneratedIds());

    [Fact]
    public void EveryConversionToScalarIsBanned()
    {
        int conversions = typeof(TorchSharp.Scalar).GetMethods()
            .Count(m => m.Name == "op_Implicit" && m.ReturnType == typeof(TorchSharp.Scalar));
        int banned = GeneratedIds().Count(id => id.StartsWith("M:TorchSharp.Scalar.op_Implicit(", StringComparison.Ordinal)
                                                && id.EndsWith(")~TorchSharp.Scalar", StringComparison.Ordinal));
        Assert.True(conversions >= 10, $"{conversions} conversions found");
        Assert.Equal(conversions, banned);
    }
}
