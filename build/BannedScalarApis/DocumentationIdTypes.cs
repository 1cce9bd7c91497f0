using System.Collections.Immutable;
using System.Reflection.Metadata;

namespace ModelOptPS.BannedScalarApis;

/// <summary>
/// Decodes signature types into the type part of C# documentation comment IDs (the format BannedSymbols.txt uses):
/// nested types joined with '.', generic instantiations as <c>Name{A,B}</c>, type parameters as <c>`0</c>, method
/// type parameters as <c>``0</c>, arrays as <c>[]</c> or <c>[0:,0:]</c>, ref/out/in as <c>@</c>, pointers as <c>*</c>.
/// </summary>
internal sealed class DocumentationIdTypes(MetadataReader reader) : ISignatureTypeProvider<string, object?>
{
    public string GetPrimitiveType(PrimitiveTypeCode typeCode) => typeCode switch
    {
        PrimitiveTypeCode.Void => "System.Void",
        PrimitiveTypeCode.Boolean => "System.Boolean",
        PrimitiveTypeCode.Char => "System.Char",
        PrimitiveTypeCode.SByte => "System.SByte",
        PrimitiveTypeCode.Byte => "System.Byte",
        PrimitiveTypeCode.Int16 => "System.Int16",
        PrimitiveTypeCode.UInt16 => "System.UInt16",
        PrimitiveTypeCode.Int32 => "System.Int32",
        PrimitiveTypeCode.UInt32 => "System.UInt32",
        PrimitiveTypeCode.Int64 => "System.Int64",
        PrimitiveTypeCode.UInt64 => "System.UInt64",
        PrimitiveTypeCode.Single => "System.Single",
        PrimitiveTypeCode.Double => "System.Double",
        PrimitiveTypeCode.String => "System.String",
        PrimitiveTypeCode.IntPtr => "System.IntPtr",
        PrimitiveTypeCode.UIntPtr => "System.UIntPtr",
        PrimitiveTypeCode.Object => "System.Object",
        PrimitiveTypeCode.TypedReference => "System.TypedReference",
        _ => throw new BadImageFormatException($"Unknown primitive type code {typeCode}."),
    };

    public string GetTypeFromDefinition(MetadataReader _, TypeDefinitionHandle handle, byte rawTypeKind) => DefinitionName(handle);

    public string GetTypeFromReference(MetadataReader _, TypeReferenceHandle handle, byte rawTypeKind)
    {
        var type = reader.GetTypeReference(handle);
        var name = reader.GetString(type.Name);
        if (type.ResolutionScope.Kind == HandleKind.TypeReference)
            return GetTypeFromReference(reader, (TypeReferenceHandle)type.ResolutionScope, rawTypeKind) + "." + name;
        var ns = reader.GetString(type.Namespace);
        return ns.Length == 0 ? name : ns + "." + name;
    }

    public string GetTypeFromSpecification(MetadataReader _, object? context, TypeSpecificationHandle handle, byte rawTypeKind) =>
        reader.GetTypeSpecification(handle).DecodeSignature(this, context);

    public string GetSZArrayType(string elementType) => elementType + "[]";

    public string GetArrayType(string elementType, ArrayShape shape) =>
        elementType + "[" + string.Join(",", Enumerable.Range(0, shape.Rank).Select(i =>
        {
            var lower = i < shape.LowerBounds.Length ? shape.LowerBounds[i] : 0;
            return i < shape.Sizes.Length ? $"{lower}:{lower + shape.Sizes[i] - 1}" : $"{lower}:";
        })) + "]";

    public string GetByReferenceType(string elementType) => elementType + "@";

    public string GetPointerType(string elementType) => elementType + "*";

    public string GetPinnedType(string elementType) => elementType;

    // Custom modifiers (modreq(InAttribute) of 'in' parameters, volatile) are not part of a C# documentation ID.
    public string GetModifiedType(string modifier, string unmodifiedType, bool isRequired) => unmodifiedType;

    public string GetGenericTypeParameter(object? context, int index) => "`" + index;

    public string GetGenericMethodParameter(object? context, int index) => "``" + index;

    public string GetFunctionPointerType(MethodSignature<string> signature) =>
        "=FUNC:" + signature.ReturnType + "(" + string.Join(",", signature.ParameterTypes) + ")";

    /// <summary>
    /// <c>Outer`1.Inner`1</c> with arguments [A, B] becomes <c>Outer{A}.Inner{B}</c>: each segment takes as many
    /// arguments as its own arity says.
    /// </summary>
    public string GetGenericInstantiation(string genericType, ImmutableArray<string> typeArguments)
    {
        var segments = genericType.Split('.');
        var next = 0;
        for (var i = 0; i < segments.Length; i++)
        {
            var tick = segments[i].IndexOf('`');
            if (tick < 0 || !int.TryParse(segments[i].AsSpan(tick + 1), out var arity)) continue;
            segments[i] = segments[i][..tick] + "{" + string.Join(",", typeArguments.Skip(next).Take(arity)) + "}";
            next += arity;
        }
        return string.Join(".", segments);
    }

    /// <summary>A type defined in this assembly, by its full name with nested types joined with '.' (arity suffixes kept).</summary>
    public string DefinitionName(TypeDefinitionHandle handle)
    {
        var type = reader.GetTypeDefinition(handle);
        var name = reader.GetString(type.Name);
        var declaring = type.GetDeclaringType();
        if (!declaring.IsNil) return DefinitionName(declaring) + "." + name;
        var ns = reader.GetString(type.Namespace);
        return ns.Length == 0 ? name : ns + "." + name;
    }
}
