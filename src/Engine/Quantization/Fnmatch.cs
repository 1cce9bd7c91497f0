using System.Collections.Concurrent;
using System.Text;
using System.Text.RegularExpressions;

namespace ModelOptPS.Engine.Quantization;

/// <summary>
/// Python's <c>fnmatch.fnmatchcase</c>, which ModelOpt uses to match recipe patterns against quantizer names:
/// <c>*</c> matches any run of characters including dots, <c>?</c> one character, <c>[seq]</c> and <c>[!seq]</c>
/// character sets; case-sensitive; the whole name must match.
/// </summary>
public static class Fnmatch
{
    private static readonly ConcurrentDictionary<string, Regex> Cache = new(StringComparer.Ordinal);

    public static bool IsMatch(string name, string pattern) => Cache.GetOrAdd(pattern, Compile).IsMatch(name);

    /// <summary>The regular expression equivalent to <paramref name="pattern"/> (same translation as Python's).</summary>
    public static string Translate(string pattern)
    {
        var sb = new StringBuilder("^(?s:");
        for (int i = 0; i < pattern.Length; i++)
        {
            char c = pattern[i];
            switch (c)
            {
                case '*':
                    sb.Append(".*");
                    while (i + 1 < pattern.Length && pattern[i + 1] == '*') i++;
                    break;
                case '?':
                    sb.Append('.');
                    break;
                case '[':
                    int j = i + 1;
                    if (j < pattern.Length && pattern[j] == '!') j++;
                    if (j < pattern.Length && pattern[j] == ']') j++;
                    while (j < pattern.Length && pattern[j] != ']') j++;
                    if (j >= pattern.Length)
                    {
                        sb.Append(@"\[");
                        break;
                    }
                    string set = pattern[(i + 1)..j].Replace(@"\", @"\\");
                    i = j;
                    if (set.StartsWith('!')) set = "^" + set[1..];
                    else if (set.StartsWith('^')) set = @"\" + set;
                    sb.Append('[').Append(set).Append(']');
                    break;
                default:
                    sb.Append(Regex.Escape(c.ToString()));
                    break;
            }
        }
        return sb.Append(")$").ToString();
    }

    private static Regex Compile(string pattern) => new(Translate(pattern), RegexOptions.CultureInvariant);
}
