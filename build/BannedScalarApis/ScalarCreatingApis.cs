using System.Reflection;
using System.Reflection.Emit;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;

namespace ModelOptPS.BannedScalarApis;

/// <summary>
/// Finds, in TorchSharp.dll's IL, every externally visible member that creates a <c>TorchSharp.Scalar</c>, and writes
/// them as BannedSymbols.txt lines (documentation comment IDs). Why: a Scalar is freed by its finalizer and TorchSharp
/// passes its native handle to libtorch without keeping the managed object alive, so a garbage collection during the
/// native call can free it mid-operation (a random "INTERNAL ASSERT FAILED at c10/core/Scalar.h" crash). A member is
/// listed when its body constructs a Scalar, or calls, constructs, or takes the address of (a lambda) a TorchSharp
/// method that does, transitively; a lambda or iterator body counts for the method that creates it, and constructing
/// an object counts for the overrides it brings (see below). Interface implementations are not followed.
/// </summary>
public static class ScalarCreatingApis
{
    private const string ScalarTypeName = "TorchSharp.Scalar";

    public const string Reason =
        "creates a TorchSharp.Scalar that the GC may finalize during the native call; pass numbers through ModelOptPS.Engine.Torch.Scalars";

    /// <summary>The sorted, distinct BannedSymbols.txt lines for the TorchSharp.dll at <paramref name="torchSharpPath"/>.</summary>
    public static IReadOnlyList<string> BannedSymbolLines(string torchSharpPath)
    {
        using var stream = File.OpenRead(torchSharpPath);
        using var pe = new PEReader(stream);
        var reader = pe.GetMetadataReader();
        var ids = new DocumentationIds(reader);
        var creating = ScalarCreatingMethods(pe, reader);

        var lines = new SortedSet<string>(StringComparer.Ordinal);
        var accessors = new HashSet<MethodDefinitionHandle>();
        foreach (var typeHandle in reader.TypeDefinitions)
        foreach (var propertyHandle in reader.GetTypeDefinition(typeHandle).GetProperties())
        {
            var pair = reader.GetPropertyDefinition(propertyHandle).GetAccessors();
            var present = new[] { pair.Getter, pair.Setter }.Where(a => !a.IsNil).ToList();
            accessors.UnionWith(present);
            if (present.Any(a => creating.Contains(a) && IsExternallyVisible(reader, a)))
                lines.Add(ids.Property(typeHandle, propertyHandle) + ";" + Reason);
        }
        // Code names a property, not its accessor methods: those are the P: lines above.
        foreach (var handle in creating)
            if (!accessors.Contains(handle) && IsExternallyVisible(reader, handle)) lines.Add(ids.Method(handle) + ";" + Reason);
        return lines.ToList();
    }

    /// <summary>Every method (any visibility) that creates a Scalar when it runs.</summary>
    private static HashSet<MethodDefinitionHandle> ScalarCreatingMethods(PEReader pe, MetadataReader reader)
    {
        var resolver = new MethodResolver(reader);
        var scalarType = reader.TypeDefinitions.Single(t => Name(reader, t) == ScalarTypeName);
        var scalarConstructors = reader.GetTypeDefinition(scalarType).GetMethods()
            .Where(m => reader.GetString(reader.GetMethodDefinition(m).Name) == ".ctor").ToHashSet();

        var callers = new Dictionary<MethodDefinitionHandle, List<MethodDefinitionHandle>>();
        var creating = new HashSet<MethodDefinitionHandle>();
        foreach (var typeHandle in reader.TypeDefinitions)
        foreach (var method in reader.GetTypeDefinition(typeHandle).GetMethods())
        {
            var rva = reader.GetMethodDefinition(method).RelativeVirtualAddress;
            if (rva == 0) continue;
            var il = pe.GetMethodBody(rva).GetILReader();
            foreach (var token in CalledMethodTokens(il))
            {
                var callee = resolver.Resolve(MetadataTokens.EntityHandle(token));
                if (callee is not { } target) continue;
                if (scalarConstructors.Contains(target)) creating.Add(method);
                AddCaller(target, method);
            }
        }

        // Iterator and async bodies live in a compiler-generated class's MoveNext; constructing that class runs them.
        foreach (var typeHandle in reader.TypeDefinitions)
        {
            var type = reader.GetTypeDefinition(typeHandle);
            if (!reader.GetString(type.Name).StartsWith('<') || type.GetDeclaringType().IsNil) continue;
            var methods = type.GetMethods().ToList();
            var moveNext = methods.Where(m => reader.GetString(reader.GetMethodDefinition(m).Name) == "MoveNext");
            foreach (var constructor in methods.Where(m => reader.GetString(reader.GetMethodDefinition(m).Name) == ".ctor"))
            foreach (var body in moveNext)
                AddCaller(body, constructor);
        }

        // Code calls an override through its base declaration (module.call(x) reaches Softplus.forward, an optimizer
        // typed as Optimizer reaches AdamW.step), which the analyzer cannot tell apart from other overrides: so
        // constructing an object counts as calling its overrides, and its constructors and factories are listed.
        foreach (var typeHandle in reader.TypeDefinitions)
        {
            var methods = reader.GetTypeDefinition(typeHandle).GetMethods().ToList();
            var constructors = methods.Where(m => reader.GetString(reader.GetMethodDefinition(m).Name) == ".ctor").ToList();
            foreach (var method in methods.Where(m => IsOverride(reader.GetMethodDefinition(m))))
            foreach (var constructor in constructors)
                AddCaller(method, constructor);
        }

        var pending = new Queue<MethodDefinitionHandle>(creating);
        while (pending.TryDequeue(out var method))
            if (callers.TryGetValue(method, out var list))
                foreach (var caller in list)
                    if (creating.Add(caller)) pending.Enqueue(caller);
        return creating;

        void AddCaller(MethodDefinitionHandle callee, MethodDefinitionHandle caller)
        {
            if (!callers.TryGetValue(callee, out var list)) callers[callee] = list = [];
            list.Add(caller);
        }
    }

    /// <summary>Metadata tokens of the methods an IL body calls, constructs, or loads as a function pointer.</summary>
    private static IEnumerable<int> CalledMethodTokens(BlobReader il)
    {
        var tokens = new List<int>();
        while (il.RemainingBytes > 0)
        {
            int value = il.ReadByte();
            if (value == 0xFE) value = 0xFE00 | il.ReadByte();
            if (!OpCodesByValue.TryGetValue((short)value, out var opCode))
                throw new BadImageFormatException($"Unknown IL opcode 0x{value:X}.");
            if (opCode.OperandType == OperandType.InlineMethod)
            {
                tokens.Add(il.ReadInt32());
                continue;
            }
            SkipOperand(ref il, opCode.OperandType);
        }
        return tokens;
    }

    private static void SkipOperand(ref BlobReader il, OperandType operand)
    {
        switch (operand)
        {
            case OperandType.InlineNone: break;
            case OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar: il.Offset += 1; break;
            case OperandType.InlineVar: il.Offset += 2; break;
            case OperandType.InlineI8 or OperandType.InlineR: il.Offset += 8; break;
            case OperandType.InlineSwitch:
                var targets = il.ReadInt32();
                il.Offset += 4 * targets;
                break;
            default: il.Offset += 4; break;
        }
    }

    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    private static bool IsOverride(MethodDefinition method) =>
        (method.Attributes & MethodAttributes.Virtual) != 0 && (method.Attributes & MethodAttributes.NewSlot) == 0;

    private static bool IsExternallyVisible(MetadataReader reader, MethodDefinitionHandle handle)
    {
        var method = reader.GetMethodDefinition(handle);
        var access = method.Attributes & MethodAttributes.MemberAccessMask;
        return access is MethodAttributes.Public or MethodAttributes.Family or MethodAttributes.FamORAssem
               && IsExternallyVisible(reader, method.GetDeclaringType());
    }

    private static bool IsExternallyVisible(MetadataReader reader, TypeDefinitionHandle handle)
    {
        var type = reader.GetTypeDefinition(handle);
        var visibility = type.Attributes & TypeAttributes.VisibilityMask;
        return visibility switch
        {
            TypeAttributes.Public => true,
            TypeAttributes.NestedPublic or TypeAttributes.NestedFamily or TypeAttributes.NestedFamORAssem =>
                IsExternallyVisible(reader, type.GetDeclaringType()),
            _ => false,
        };
    }

    private static string Name(MetadataReader reader, TypeDefinitionHandle handle)
    {
        var type = reader.GetTypeDefinition(handle);
        return reader.GetString(type.Namespace) + "." + reader.GetString(type.Name);
    }
}
