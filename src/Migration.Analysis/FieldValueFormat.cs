using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace MiniVmm.Migration.Analysis;

/// <summary>How decoded VMState field values are shown: integers as zero-padded hex strings, byte buffers as spaced hex.</summary>
internal static class FieldValueFormat
{
    /// <summary>
    /// A big-endian integer of 1 to 8 bytes as <c>0x</c> plus two hex digits per byte; a negative
    /// signed value gets its decimal value appended, e.g. <c>0xfffffffe (-2)</c>.
    /// </summary>
    public static string Integer(ReadOnlySpan<byte> bigEndian, bool signed)
    {
        Span<byte> wide = stackalloc byte[sizeof(ulong)];
        wide.Clear();
        bigEndian.CopyTo(wide[(sizeof(ulong) - bigEndian.Length)..]);
        ulong raw = BinaryPrimitives.ReadUInt64BigEndian(wide);
        string hex = "0x" + raw.ToString("x" + (bigEndian.Length * 2).ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
        int unusedBits = (sizeof(ulong) - bigEndian.Length) * 8;
        long value = (long)(raw << unusedBits) >> unusedBits;
        return signed && value < 0 ? $"{hex} ({value.ToString(CultureInfo.InvariantCulture)})" : hex;
    }

    /// <summary>
    /// Bytes as lower-case hex pairs separated by spaces; when only the first part of a longer
    /// value is given, says how many bytes were left out.
    /// </summary>
    public static string Bytes(ReadOnlySpan<byte> shown, long totalLength)
    {
        var text = new StringBuilder(shown.Length * 3 + 32);
        foreach (byte b in shown)
        {
            if (text.Length > 0)
            {
                text.Append(' ');
            }

            text.Append(b.ToString("x2", CultureInfo.InvariantCulture));
        }

        if (totalLength > shown.Length)
        {
            text.Append(CultureInfo.InvariantCulture, $" ... ({totalLength - shown.Length} more bytes)");
        }

        return text.ToString();
    }

    /// <summary>
    /// The bytes read as a C string when they are printable ASCII followed only by NUL padding
    /// (like the globalstate run state); otherwise null.
    /// </summary>
    public static string? NulPaddedText(ReadOnlySpan<byte> bytes)
    {
        int end = bytes.IndexOf((byte)0);
        ReadOnlySpan<byte> text = end < 0 ? bytes : bytes[..end];
        if (text.IsEmpty || end < 0 || bytes[end..].IndexOfAnyExcept((byte)0) >= 0)
        {
            return null;
        }

        foreach (byte b in text)
        {
            if (b is < 0x20 or > 0x7e)
            {
                return null;
            }
        }

        return Encoding.ASCII.GetString(text);
    }
}
