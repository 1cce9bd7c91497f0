using System.Text;

namespace ModelOptPS.Engine.Text;

/// <summary>
/// GPT-2's byte-to-unicode table, used by every byte-level BPE tokenizer.json (Qwen, Llama 3): printable Latin-1
/// bytes map to themselves, the other 68 bytes to code points from U+0100 on, so any byte string is a visible string.
/// </summary>
public static class ByteLevel
{
    private static readonly char[] ByteToChar = Build();

    public static char Char(byte b) => ByteToChar[b];

    /// <summary>The byte-level spelling of a UTF-8 string (what appears in vocab and merges).</summary>
    public static string Encode(string text)
    {
        var sb = new StringBuilder();
        foreach (byte b in Encoding.UTF8.GetBytes(text)) sb.Append(ByteToChar[b]);
        return sb.ToString();
    }

    public static string Encode(ReadOnlySpan<byte> bytes)
    {
        var sb = new StringBuilder(bytes.Length);
        foreach (byte b in bytes) sb.Append(ByteToChar[b]);
        return sb.ToString();
    }

    private static char[] Build()
    {
        var table = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            table[b] = printable ? (char)b : (char)next++;
        }
        return table;
    }
}
