// MSBuild inline tasks (RoslynCodeTaskFactory, compiled against netstandard 2.0) used by TorchSharpNative.targets.
// They make TorchSharp's libLibTorchSharp.so loadable where the system libstdc++ predates GLIBCXX_3.4.32
// (Debian 12 ships GCC 12's GLIBCXX_3.4.30): the library needs exactly one symbol of that version,
// std::ios_base_library_init(), which a tiny shim library provides. All edits are in place (no section or segment
// moves), so they are small and checkable: anything unexpected in the file is an error, never a guess.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

/// <summary>
/// Lists the libstdc++ symbol versions a library needs that this system's libstdc++ lacks, one a line, in
/// <see cref="ResultFile"/> (empty when the library loads as shipped). A file, so the build can skip the check when
/// neither library changed.
/// </summary>
public sealed class FindMissingLibStdCxxVersions : Task
{
    /// <summary>The ELF shared library to check (libLibTorchSharp.so).</summary>
    [Required] public string Library { get; set; }

    [Required] public string ResultFile { get; set; }

    public override bool Execute()
    {
        try
        {
            string libStdCxxPath = LibStdCxxLocator.Find();
            var missing = new List<string>();
            if (libStdCxxPath == null)
            {
                Log.LogWarning("No libstdc++.so.6 found on this system; leaving {0} as shipped.", Library);
            }
            else
            {
                var elf = new ElfImage(File.ReadAllBytes(Library));
                byte[] libStdCxx = File.ReadAllBytes(libStdCxxPath);
                missing.AddRange(elf.VersionNeeds()
                    .Where(v => v.File.StartsWith("libstdc++.so", StringComparison.Ordinal))
                    .Select(v => v.Version)
                    .Distinct()
                    .Where(v => !ElfImage.ContainsCString(libStdCxx, v)));
                Log.LogMessage(MessageImportance.Normal, missing.Count == 0
                    ? $"{libStdCxxPath} has every version {Path.GetFileName(Library)} needs: it is used as shipped."
                    : $"{libStdCxxPath} lacks {string.Join(", ", missing)}: {Path.GetFileName(Library)} gets the libstdc++ shim.");
            }
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(ResultFile)));
            AtomicFile.Write(ResultFile, Encoding.ASCII.GetBytes(string.Concat(missing.Select(v => v + "\n"))));
            return true;
        }
        catch (Exception e) when (e is IOException || e is InvalidDataException || e is UnauthorizedAccessException)
        {
            Log.LogError("Cannot check {0} against the system libstdc++: {1}", Library, e.Message);
            return false;
        }
    }
}

/// <summary>
/// Writes a patched copy of libLibTorchSharp.so that loads with an older libstdc++ plus the shim:
/// (1) each symbol bound to a missing version gets no version (the shim or libstdc++ then provides it),
/// (2) each missing version's need is marked weak (VER_FLG_WEAK: the loader no longer refuses the file),
/// (3) the shim becomes a DT_NEEDED dependency, found through a runpath of just $ORIGIN. Its name is written
///     over the shipped runpath string (which held $ORIGIN/ plus the paths of TorchSharp's CI machine), and the
///     entry takes one of the spare DT_NULL slots the linker left at the end of .dynamic.
/// The copy is written beside the destination and renamed over it, so a destination is never half written.
/// </summary>
public sealed class PatchLibTorchSharpElf : Task
{
    [Required] public string Source { get; set; }

    [Required] public string Destination { get; set; }

    /// <summary>Semicolon-separated versions the system lacks (from FindMissingLibStdCxxVersions).</summary>
    [Required] public string MissingVersions { get; set; }

    /// <summary>File name of the shim library, placed beside the patched copy.</summary>
    [Required] public string ShimFileName { get; set; }

    /// <summary>The libstdc++ versions the shim stands in for, and the only symbols of theirs it defines (stdcxx_shim.cpp).</summary>
    private static readonly Dictionary<string, string[]> ShimmedSymbols = new Dictionary<string, string[]>
    {
        ["GLIBCXX_3.4.32"] = new[] { "_ZSt21ios_base_library_initv" },
    };

    public override bool Execute()
    {
        try
        {
            var elf = new ElfImage(File.ReadAllBytes(Source));
            foreach (string version in MissingVersions.Split(new[] { ';' }, StringSplitOptions.RemoveEmptyEntries))
            {
                if (!ShimmedSymbols.TryGetValue(version, out string[] symbols))
                {
                    Log.LogError("{0} needs {1}, which this system's libstdc++ lacks and the shim cannot provide. " +
                                 "Install a libstdc++ that has it.", Source, version);
                    return false;
                }
                WeakenVersionNeed(elf, version, symbols);
            }
            AddNeededWithOriginRunpath(elf, ShimFileName);
            AtomicFile.Write(Destination, elf.Bytes);
            Log.LogMessage(MessageImportance.Normal, "Patched {0} -> {1} (needs {2}).", Source, Destination, ShimFileName);
            return true;
        }
        catch (Exception e) when (e is IOException || e is InvalidDataException || e is UnauthorizedAccessException)
        {
            Log.LogError("Cannot patch {0}: {1}", Source, e.Message);
            return false;
        }
    }

    private static void WeakenVersionNeed(ElfImage elf, string version, string[] shimmedSymbols)
    {
        const ushort VerFlagWeak = 0x2;
        List<ElfImage.VersionNeed> needs = elf.VersionNeeds().Where(v => v.Version == version).ToList();
        if (needs.Count == 0)
            throw new InvalidDataException($"it has no need for version {version}.");
        foreach (ElfImage.VersionNeed need in needs)
        {
            elf.WriteU16(need.AuxOffset + 4, (ushort)(elf.ReadU16(need.AuxOffset + 4) | VerFlagWeak));
            foreach (int symbol in elf.SymbolsWithVersionIndex(need.Index))
            {
                string name = elf.SymbolName(symbol);
                if (!shimmedSymbols.Contains(name))
                    throw new InvalidDataException($"symbol {name} needs {version}, which the shim does not provide.");
                elf.SetSymbolVersionIndex(symbol, 1); // VER_NDX_GLOBAL: bind to any definition.
            }
        }
    }

    private static void AddNeededWithOriginRunpath(ElfImage elf, string shimFileName)
    {
        const long DtNull = 0, DtNeeded = 1, DtRpath = 15, DtRunpath = 29;
        const string Origin = "$ORIGIN";
        List<ElfImage.DynamicEntry> dynamic = elf.DynamicEntries();
        if (dynamic.Any(e => e.Tag == DtNeeded && elf.DynamicString(e.Value) == shimFileName))
            return; // Already depends on the shim.

        ElfImage.DynamicEntry runpath = dynamic.FirstOrDefault(e => e.Tag == DtRunpath || e.Tag == DtRpath)
            ?? throw new InvalidDataException("it has no runpath whose string could hold the shim's name.");
        long start = runpath.Value;
        int length = elf.DynamicString(start).Length;
        long shimName = start + Origin.Length + 1;
        if (Origin.Length + 1 + shimFileName.Length > length)
            throw new InvalidDataException($"its runpath string ({length} bytes) is too short to hold \"{shimFileName}\".");
        // Linkers share string tails; rewriting is safe only if nothing else points inside the runpath string.
        long shared = elf.DynamicStringReferences().FirstOrDefault(r => r > start && r <= start + length);
        if (shared != 0)
            throw new InvalidDataException($"its runpath string shares bytes with another name (offset {shared}).");

        // The first DT_NULL ends the table; the DT_NEEDED entry takes it only if another DT_NULL follows.
        int freeSlot = dynamic.FindIndex(e => e.Tag == DtNull);
        if (freeSlot < 0 || freeSlot + 1 >= dynamic.Count || dynamic[freeSlot + 1].Tag != DtNull)
            throw new InvalidDataException("its .dynamic section has no spare slot for another DT_NEEDED entry.");

        byte[] text = new byte[length];
        Encoding.ASCII.GetBytes(Origin + "\0" + shimFileName).CopyTo(text, 0);
        elf.WriteDynamicStringBytes(start, text);
        elf.WriteDynamicEntry(dynamic[freeSlot].FileOffset, DtNeeded, shimName);
    }
}

/// <summary>Finds the libstdc++ the .NET host (and so every .NET process here) loads.</summary>
internal static class LibStdCxxLocator
{
    private static readonly string[] Directories =
    {
        "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64", "/lib64", "/usr/lib", "/lib",
    };

    public static string Find()
    {
        // This MSBuild process runs on the same .NET host, so the libstdc++ mapped here is the one that counts.
        try
        {
            string mapped = File.ReadLines("/proc/self/maps")
                .Select(line => line.Split(new[] { ' ' }, StringSplitOptions.RemoveEmptyEntries).LastOrDefault())
                .FirstOrDefault(path => path != null && Path.GetFileName(path).StartsWith("libstdc++.so", StringComparison.Ordinal));
            if (mapped != null && File.Exists(mapped))
                return mapped;
        }
        catch (IOException)
        {
        }
        return Directories.Select(d => Path.Combine(d, "libstdc++.so.6")).FirstOrDefault(File.Exists);
    }
}

internal static class AtomicFile
{
    /// <summary>Writes a temporary file beside the destination, then renames it over the destination.</summary>
    public static void Write(string destination, byte[] bytes)
    {
        string temp = destination + "." + Guid.NewGuid().ToString("N") + ".tmp";
        try
        {
            File.WriteAllBytes(temp, bytes);
            Replace(temp, destination);
        }
        finally
        {
            if (File.Exists(temp))
                File.Delete(temp);
        }
    }

    /// <summary>rename(2): atomic on one file system, and it replaces an existing destination.</summary>
    public static void Replace(string source, string destination)
    {
        if (File.Exists(destination))
            File.Replace(source, destination, null);
        else
            File.Move(source, destination);
    }
}

/// <summary>Just enough of a 64-bit little-endian ELF shared object to read and edit its dynamic linking data.</summary>
internal sealed class ElfImage
{
    private const uint PtLoad = 1, PtDynamic = 2;
    private const uint ShtDynsym = 11, ShtGnuVersym = 0x6fffffff;
    private const long DtStrtab = 5, DtStrsz = 10, DtVerneed = 0x6ffffffe, DtVerneedNum = 0x6fffffff;
    private const long DtVerdef = 0x6ffffffc, DtVerdefNum = 0x6ffffffd;
    private static readonly long[] DynamicStringTags = { 1, 14, 15, 29, 0x7ffffffd, 0x7fffffff }; // NEEDED SONAME RPATH RUNPATH AUXILIARY FILTER

    public sealed class DynamicEntry
    {
        public long FileOffset;
        public long Tag;
        public long Value;
    }

    public sealed class VersionNeed
    {
        public string File;
        public string Version;
        public ushort Index;
        public long AuxOffset;
        public long FileNameRef;
        public long VersionNameRef;
    }

    private readonly List<(uint Type, long Offset, long VirtualAddress, long FileSize)> _segments = new List<(uint, long, long, long)>();
    private readonly long _dynamicOffset, _dynamicSize, _dynstrOffset, _dynstrSize;
    private readonly long _dynsymOffset, _dynsymCount, _versymOffset;

    public ElfImage(byte[] bytes)
    {
        Bytes = bytes;
        if (bytes.Length < 64 || bytes[0] != 0x7f || bytes[1] != 'E' || bytes[2] != 'L' || bytes[3] != 'F')
            throw new InvalidDataException("not an ELF file.");
        if (bytes[4] != 2 || bytes[5] != 1)
            throw new InvalidDataException("not a 64-bit little-endian ELF file.");
        if (ReadU16(16) != 3)
            throw new InvalidDataException("not an ELF shared object.");

        long phoff = ReadI64(32), shoff = ReadI64(40);
        int phentsize = ReadU16(54), phnum = ReadU16(56), shentsize = ReadU16(58), shnum = ReadU16(60);
        for (int i = 0; i < phnum; i++)
        {
            long p = phoff + (long)i * phentsize;
            _segments.Add((ReadU32(p), ReadI64(p + 8), ReadI64(p + 16), ReadI64(p + 32)));
        }
        var dynamic = _segments.FirstOrDefault(s => s.Type == PtDynamic);
        if (dynamic.Type != PtDynamic)
            throw new InvalidDataException("it has no dynamic segment.");
        (_dynamicOffset, _dynamicSize) = (dynamic.Offset, dynamic.FileSize);

        List<DynamicEntry> entries = DynamicEntries();
        _dynstrOffset = FileOffsetOf(Required(entries, DtStrtab));
        _dynstrSize = Required(entries, DtStrsz);

        // The symbol count is not in .dynamic; the section headers have it (both sections always have them in practice).
        for (int i = 0; i < shnum; i++)
        {
            long s = shoff + (long)i * shentsize;
            uint type = ReadU32(s + 4);
            if (type == ShtDynsym)
            {
                _dynsymOffset = ReadI64(s + 24);
                _dynsymCount = ReadI64(s + 32) / Math.Max(1, ReadI64(s + 56));
            }
            else if (type == ShtGnuVersym)
            {
                _versymOffset = ReadI64(s + 24);
            }
        }
        if (_dynsymCount == 0)
            throw new InvalidDataException("it has no .dynsym section header.");
    }

    public byte[] Bytes { get; }

    public List<DynamicEntry> DynamicEntries()
    {
        var entries = new List<DynamicEntry>();
        for (long p = _dynamicOffset; p + 16 <= _dynamicOffset + _dynamicSize; p += 16)
            entries.Add(new DynamicEntry { FileOffset = p, Tag = ReadI64(p), Value = ReadI64(p + 8) });
        return entries;
    }

    public IEnumerable<VersionNeed> VersionNeeds()
    {
        List<DynamicEntry> entries = DynamicEntries();
        long count = Optional(entries, DtVerneedNum);
        long need = count > 0 ? FileOffsetOf(Required(entries, DtVerneed)) : 0;
        for (long i = 0; i < count; i++)
        {
            long fileRef = ReadU32(need + 4);
            long aux = need + ReadU32(need + 8);
            for (int j = 0, auxCount = ReadU16(need + 2); j < auxCount; j++)
            {
                long nameRef = ReadU32(aux + 8);
                yield return new VersionNeed
                {
                    File = DynamicString(fileRef),
                    Version = DynamicString(nameRef),
                    Index = (ushort)(ReadU16(aux + 6) & 0x7fff),
                    AuxOffset = aux,
                    FileNameRef = fileRef,
                    VersionNameRef = nameRef,
                };
                aux += ReadU32(aux + 12);
            }
            need += ReadU32(need + 12);
        }
    }

    /// <summary>Every offset into .dynstr that something in the dynamic linking data points at.</summary>
    public IEnumerable<long> DynamicStringReferences()
    {
        List<DynamicEntry> entries = DynamicEntries();
        foreach (DynamicEntry e in entries.Where(e => DynamicStringTags.Contains(e.Tag)))
            yield return e.Value;
        for (long i = 0; i < _dynsymCount; i++)
            yield return ReadU32(_dynsymOffset + i * 24);
        foreach (VersionNeed need in VersionNeeds())
        {
            yield return need.FileNameRef;
            yield return need.VersionNameRef;
        }
        long defCount = Optional(entries, DtVerdefNum);
        long def = defCount > 0 ? FileOffsetOf(Required(entries, DtVerdef)) : 0;
        for (long i = 0; i < defCount; i++)
        {
            long aux = def + ReadU32(def + 12);
            for (int j = 0, auxCount = ReadU16(def + 6); j < auxCount; j++)
            {
                yield return ReadU32(aux);
                aux += ReadU32(aux + 4);
            }
            def += ReadU32(def + 16);
        }
    }

    public IEnumerable<int> SymbolsWithVersionIndex(ushort index)
    {
        if (_versymOffset == 0)
            yield break;
        for (int i = 0; i < _dynsymCount; i++)
        {
            if ((ReadU16(_versymOffset + 2L * i) & 0x7fff) == index)
                yield return i;
        }
    }

    public string SymbolName(int symbol) => DynamicString(ReadU32(_dynsymOffset + 24L * symbol));

    public void SetSymbolVersionIndex(int symbol, ushort index) => WriteU16(_versymOffset + 2L * symbol, index);

    public string DynamicString(long offset)
    {
        if (offset < 0 || offset >= _dynstrSize)
            throw new InvalidDataException($"string offset {offset} lies outside .dynstr.");
        long start = _dynstrOffset + offset, end = start;
        while (end < _dynstrOffset + _dynstrSize && Bytes[end] != 0)
            end++;
        return Encoding.ASCII.GetString(Bytes, (int)start, (int)(end - start));
    }

    public void WriteDynamicStringBytes(long offset, byte[] text) => Array.Copy(text, 0, Bytes, _dynstrOffset + offset, text.Length);

    public void WriteDynamicEntry(long fileOffset, long tag, long value)
    {
        WriteI64(fileOffset, tag);
        WriteI64(fileOffset + 8, value);
    }

    public static bool ContainsCString(byte[] haystack, string text)
    {
        byte[] needle = Encoding.ASCII.GetBytes("\0" + text + "\0");
        for (int i = 0; i + needle.Length <= haystack.Length; i++)
        {
            int j = 0;
            while (j < needle.Length && haystack[i + j] == needle[j])
                j++;
            if (j == needle.Length)
                return true;
        }
        return false;
    }

    public ushort ReadU16(long p) => (ushort)(Bytes[p] | Bytes[p + 1] << 8);

    public uint ReadU32(long p) => (uint)(ReadU16(p) | ReadU16(p + 2) << 16);

    public long ReadI64(long p) => (long)((ulong)ReadU32(p) | (ulong)ReadU32(p + 4) << 32);

    public void WriteU16(long p, ushort value)
    {
        Bytes[p] = (byte)value;
        Bytes[p + 1] = (byte)(value >> 8);
    }

    private void WriteI64(long p, long value)
    {
        for (int i = 0; i < 8; i++)
            Bytes[p + i] = (byte)(value >> (8 * i));
    }

    private long FileOffsetOf(long virtualAddress)
    {
        foreach (var s in _segments.Where(s => s.Type == PtLoad))
        {
            if (virtualAddress >= s.VirtualAddress && virtualAddress < s.VirtualAddress + s.FileSize)
                return s.Offset + (virtualAddress - s.VirtualAddress);
        }
        throw new InvalidDataException($"address 0x{virtualAddress:x} is in no loaded segment.");
    }

    private static long Required(List<DynamicEntry> entries, long tag) =>
        (entries.FirstOrDefault(e => e.Tag == tag) ?? throw new InvalidDataException($"it has no dynamic entry 0x{tag:x}.")).Value;

    private static long Optional(List<DynamicEntry> entries, long tag) => entries.FirstOrDefault(e => e.Tag == tag)?.Value ?? 0;
}
