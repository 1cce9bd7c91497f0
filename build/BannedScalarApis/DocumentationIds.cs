using System.Reflection.Metadata;

namespace ModelOptPS.BannedScalarApis;

/// <summary>
/// C# documentation comment IDs of methods and properties defined in an assembly, as BannedSymbols.txt names them:
/// <c>M:TorchSharp.torch.Tensor.add(TorchSharp.torch.Tensor)</c>, <c>M:TorchSharp.Scalar.op_Implicit(System.Double)~TorchSharp.Scalar</c>,
/// <c>M:N.T`1.#ctor(`0)</c>, <c>M:N.T.M``1(``0[])</c>, <c>P:N.T.Item(System.Int64)</c>.
/// </summary>
internal sealed class DocumentationIds(MetadataReader reader)
{
    private readonly DocumentationIdTypes _types = new(reader);

    public string Method(MethodDefinitionHandle handle)
    {
        var method = reader.GetMethodDefinition(handle);
        var name = reader.GetString(method.Name);
        var signature = method.DecodeSignature(_types, null);
        var id = "M:" + _types.DefinitionName(method.GetDeclaringType()) + "." + name.Replace('.', '#');
        if (signature.GenericParameterCount > 0) id += "``" + signature.GenericParameterCount;
        id += Parameters(signature.ParameterTypes);
        // Conversion operators differ only by return type, so their IDs carry it.
        if (name is "op_Implicit" or "op_Explicit") id += "~" + signature.ReturnType;
        return id;
    }

    public string Property(TypeDefinitionHandle type, PropertyDefinitionHandle handle)
    {
        var property = reader.GetPropertyDefinition(handle);
        var signature = property.DecodeSignature(_types, null);
        return "P:" + _types.DefinitionName(type) + "." + reader.GetString(property.Name) + Parameters(signature.ParameterTypes);
    }

    private static string Parameters(IReadOnlyCollection<string> types) =>
        types.Count == 0 ? "" : "(" + string.Join(",", types) + ")";
}
