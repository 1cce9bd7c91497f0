using System.Reflection.Metadata;

namespace ModelOptPS.BannedScalarApis;

/// <summary>
/// Resolves a call's method token to the method defined in this assembly: a definition as is, a generic method
/// instantiation to its method, a reference through a generic type instantiation (<c>Module`2{Tensor,Tensor}::forward</c>)
/// to the generic type's method of the same name and signature. Methods of other assemblies resolve to null.
/// </summary>
internal sealed class MethodResolver(MetadataReader reader)
{
    private readonly Dictionary<EntityHandle, MethodDefinitionHandle?> _cache = [];

    public MethodDefinitionHandle? Resolve(EntityHandle handle)
    {
        if (_cache.TryGetValue(handle, out var cached)) return cached;
        var resolved = handle.Kind switch
        {
            HandleKind.MethodDefinition => (MethodDefinitionHandle)handle,
            HandleKind.MethodSpecification => Resolve(reader.GetMethodSpecification((MethodSpecificationHandle)handle).Method),
            HandleKind.MemberReference => ResolveReference((MemberReferenceHandle)handle),
            _ => null,
        };
        _cache[handle] = resolved;
        return resolved;
    }

    private MethodDefinitionHandle? ResolveReference(MemberReferenceHandle handle)
    {
        var reference = reader.GetMemberReference(handle);
        if (reference.GetKind() != MemberReferenceKind.Method) return null;
        var type = DefinedType(reference.Parent);
        if (type is not { } definition) return null;
        var signature = reader.GetBlobContent(reference.Signature);
        return reader.GetTypeDefinition(definition).GetMethods().Cast<MethodDefinitionHandle?>().FirstOrDefault(m =>
        {
            var method = reader.GetMethodDefinition(m!.Value);
            return reader.StringComparer.Equals(method.Name, reader.GetString(reference.Name))
                   && reader.GetBlobContent(method.Signature).SequenceEqual(signature);
        });
    }

    /// <summary>The type definition a member reference's parent names, when it is one of this assembly's.</summary>
    private TypeDefinitionHandle? DefinedType(EntityHandle parent)
    {
        switch (parent.Kind)
        {
            case HandleKind.TypeDefinition:
                return (TypeDefinitionHandle)parent;
            case HandleKind.TypeSpecification:
                var blob = reader.GetBlobReader(reader.GetTypeSpecification((TypeSpecificationHandle)parent).Signature);
                // GENERICINST (CLASS | VALUETYPE) TypeDefOrRef ...: only the generic type itself matters.
                if (blob.ReadSignatureTypeCode() != SignatureTypeCode.GenericTypeInstance) return null;
                blob.ReadCompressedInteger();
                var generic = blob.ReadTypeHandle();
                return generic.Kind == HandleKind.TypeDefinition ? (TypeDefinitionHandle)generic : null;
            default:
                return null;
        }
    }
}
