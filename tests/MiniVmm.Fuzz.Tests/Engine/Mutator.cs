using System.Buffers.Binary;
using System.Text;

namespace MiniVmm.Fuzz.Tests.Engine;

/// <summary>
/// Makes one case from the seeds: one to four stacked mutations of a seed — bit flips, bytes set
/// to interesting values (0, 0xff, 0x7f, 0x80), random bytes, ranges inserted, deleted or
/// duplicated, a cut, a splice with another seed, a 16/32/64-bit field set to a huge length, a
/// field nudged by one, a decimal number in text (the vmdesc's sizes and array lengths, QMP
/// arguments) replaced by an extreme one. Positions favour the seed's hot spots (where sections and frames start),
/// its first bytes and its last ones, since the bulk of a stream is RAM pages.
/// </summary>
internal sealed class Mutator(bool bigEndianLengths)
{
    /// <summary>Inputs never grow beyond this.</summary>
    public const int MaxInputBytes = 4 << 20;

    private static readonly byte[] InterestingBytes = [0x00, 0xff, 0x7f, 0x80, 0x01, 0xfe];

    private static readonly string[] InterestingNumbers =
    [
        "0", "1", "-1", "255", "256", "4096", "65536", "1000000", "16777216", "2147483647", "2147483648",
        "4294967295", "4294967296", "9223372036854775807", "18446744073709551615", "1e300", "0.5",
    ];

    private static readonly ulong[] HugeValues =
    [
        0xffff_ffff_ffff_ffff, 0x7fff_ffff_ffff_ffff, 0x8000_0000_0000_0000,
        0xffff_ffff, 0x7fff_ffff, 0x8000_0000, 0x8000_0001, 0x0100_0000, 0x0100_0001, 0x0400_0000, 0x1000_0000,
        0xffff, 0x7fff, 0x8000,
    ];

    private enum Kind
    {
        BitFlip,
        InterestingByte,
        RandomByte,
        Insert,
        Delete,
        Duplicate,
        Truncate,
        Splice,
        HugeLength,
        Nudge,
        TextNumber,
    }

    /// <summary>A mutated input and what was done to which seed, for failure messages.</summary>
    public (byte[] Input, string Description) Mutate(FuzzRandom random, IReadOnlyList<FuzzSeed> seeds)
    {
        FuzzSeed seed = random.Pick(seeds);
        var bytes = new List<byte>(seed.Bytes);
        var description = new StringBuilder(seed.Name);
        int count = random.OneIn(2) ? 1 : random.Next(2, 5);
        for (int i = 0; i < count; i++)
        {
            description.Append("; ").Append(Apply(random, seed, seeds, bytes, pristine: i == 0));
        }

        if (bytes.Count > MaxInputBytes)
        {
            bytes.RemoveRange(MaxInputBytes, bytes.Count - MaxInputBytes);
            description.Append("; capped at ").Append(MaxInputBytes);
        }

        return ([.. bytes], description.ToString());
    }

    private string Apply(FuzzRandom random, FuzzSeed seed, IReadOnlyList<FuzzSeed> seeds, List<byte> bytes, bool pristine)
    {
        if (bytes.Count == 0)
        {
            byte[] fresh = new byte[random.Next(1, 16)];
            random.Fill(fresh);
            bytes.AddRange(fresh);
            return $"random {fresh.Length} bytes";
        }

        var kind = (Kind)random.Next(Enum.GetValues<Kind>().Length);
        int at = Position(random, seed, bytes.Count);
        switch (kind)
        {
            case Kind.BitFlip:
                int bit = random.Next(8);
                bytes[at] ^= (byte)(1 << bit);
                return $"flip bit {bit} @{at}";
            case Kind.InterestingByte:
                byte value = random.Pick(InterestingBytes);
                bytes[at] = value;
                return $"set @{at}=0x{value:x2}";
            case Kind.RandomByte:
                byte any = (byte)random.NextU64();
                bytes[at] = any;
                return $"set @{at}=0x{any:x2}";
            case Kind.Insert:
                byte[] inserted = new byte[random.Next(1, 33)];
                if (random.OneIn(2))
                {
                    random.Fill(inserted);
                }
                else
                {
                    inserted.AsSpan().Fill(random.Pick(InterestingBytes));
                }

                bytes.InsertRange(at, inserted);
                return $"insert {inserted.Length} @{at}";
            case Kind.Delete:
                int deleted = Math.Min(bytes.Count - at, RangeLength(random));
                bytes.RemoveRange(at, deleted);
                return $"delete {deleted} @{at}";
            case Kind.Duplicate:
                int length = Math.Min(bytes.Count - at, RangeLength(random));
                byte[] copy = bytes.GetRange(at, length).ToArray();
                int to = random.OneIn(2) ? at + length : random.Next(bytes.Count + 1);
                bytes.InsertRange(to, copy);
                return $"duplicate {length} @{at} to @{to}";
            case Kind.Truncate:
                bytes.RemoveRange(at, bytes.Count - at);
                return $"truncate @{at}";
            case Kind.Splice:
                FuzzSeed other = random.Pick(seeds);
                int from = Position(random, other, Math.Max(1, other.Bytes.Length));
                bytes.RemoveRange(at, bytes.Count - at);
                bytes.AddRange(other.Bytes.AsSpan(Math.Min(from, other.Bytes.Length)));
                return $"splice @{at} with {other.Name} from @{from}";
            case Kind.HugeLength:
                return WriteField(random, bytes, at, random.Pick(HugeValues), "huge");
            case Kind.TextNumber when pristine && seed.Trailer is { } trailer && random.OneIn(2):
                // Inside the vmdesc JSON, with its length fixed so the trailer still frames it.
                int json = trailer + 5;
                int before = bytes.Count;
                string change = ReplaceTextNumber(random, bytes, random.Next(json, bytes.Count));
                uint jsonLength = (uint)(bytes.Count - json);
                for (int i = 0; i < 4; i++)
                {
                    bytes[trailer + 1 + i] = (byte)(jsonLength >> (24 - 8 * i));
                }

                return $"vmdesc {change} ({bytes.Count - before:+#;-#;0} bytes)";
            case Kind.TextNumber:
                return ReplaceTextNumber(random, bytes, at);
            default:
                int width = random.Pick(new[] { 1, 2, 4, 8 });
                ulong field = ReadField(bytes, at, width, out bool big);
                long delta = random.Pick(new long[] { 1, -1, 2, -2, 256, -256, 4096, -4096 });
                return WriteField(bytes, at, width, big, unchecked(field + (ulong)delta), $"nudge {delta:+#;-#}");
        }
    }

    private string WriteField(FuzzRandom random, List<byte> bytes, int at, ulong value, string what)
    {
        int width = value > uint.MaxValue ? 8 : value > ushort.MaxValue ? random.Pick(new[] { 4, 8 }) : random.Pick(new[] { 2, 4, 8 });
        bool big = random.OneIn(4) ? !bigEndianLengths : bigEndianLengths;
        return WriteField(bytes, at, width, big, value, what);
    }

    private static string WriteField(List<byte> bytes, int at, int width, bool big, ulong value, string what)
    {
        Span<byte> encoded = stackalloc byte[8];
        if (big)
        {
            BinaryPrimitives.WriteUInt64BigEndian(encoded, value);
            encoded = encoded[(8 - width)..];
        }
        else
        {
            BinaryPrimitives.WriteUInt64LittleEndian(encoded, value);
            encoded = encoded[..width];
        }

        for (int i = 0; i < width && at + i < bytes.Count; i++)
        {
            bytes[at + i] = encoded[i];
        }

        return $"{what} {(big ? "be" : "le")}{8 * width} @{at}=0x{value & (width == 8 ? ulong.MaxValue : (1UL << (8 * width)) - 1):x}";
    }

    private ulong ReadField(List<byte> bytes, int at, int width, out bool big)
    {
        big = bigEndianLengths;
        ulong value = 0;
        for (int i = 0; i < width; i++)
        {
            byte b = at + i < bytes.Count ? bytes[at + i] : (byte)0;
            value = big ? (value << 8) | b : value | ((ulong)b << (8 * i));
        }

        return value;
    }

    /// <summary>Replaces the first run of ASCII digits at or after <paramref name="at"/> (within 512 bytes) by an extreme number.</summary>
    private static string ReplaceTextNumber(FuzzRandom random, List<byte> bytes, int at)
    {
        int end = Math.Min(bytes.Count, at + 512);
        int start = at;
        while (start < end && bytes[start] is < (byte)'0' or > (byte)'9')
        {
            start++;
        }

        string number = random.Pick(InterestingNumbers);
        if (start == end)
        {
            bytes[at] = (byte)number[0];
            return $"no number near @{at}: set @{at}='{number[0]}'";
        }

        int stop = start;
        while (stop < bytes.Count && bytes[stop] is >= (byte)'0' and <= (byte)'9')
        {
            stop++;
        }

        bytes.RemoveRange(start, stop - start);
        bytes.InsertRange(start, System.Text.Encoding.ASCII.GetBytes(number));
        return $"number @{start} ({stop - start} digits) = {number}";
    }

    private static int RangeLength(FuzzRandom random) => random.OneIn(4) ? random.Next(1, 4097) : random.Next(1, 65);

    /// <summary>A position in [0, length): near a hot spot, in the first or last bytes, or anywhere.</summary>
    private static int Position(FuzzRandom random, FuzzSeed seed, int length)
    {
        int at = random.Next(8) switch
        {
            0 or 1 or 2 when seed.HotSpots.Count > 0 => random.Pick(seed.HotSpots) + random.Next(-4, 48),
            3 => random.Next(Math.Min(length, 512)),
            4 => length - 1 - random.Next(Math.Min(length, 2048)),
            _ => random.Next(length),
        };
        return Math.Clamp(at, 0, length - 1);
    }
}
