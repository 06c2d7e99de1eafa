using System.Buffers.Binary;
using MiniVmm.Migration.Savevm;

namespace MiniVmm.Migration.Analysis;

/// <summary>
/// Finds the vmdesc trailer of a seekable stream by scanning backwards from its end for a
/// VMDESCRIPTION type byte whose be32 length reaches exactly to the end of the stream and is
/// followed by <c>{</c>. JSON holds no NUL bytes, so the scan stops once it is more than a
/// header's length before the last NUL it saw; the cost is about the size of the JSON.
/// </summary>
internal static class VmDescriptionLocator
{
    private const int ChunkSize = 64 * 1024;
    private const byte JsonObjectStart = (byte)'{';

    // The shortest JSON object, "{}".
    private const int MinJsonLength = 2;

    /// <summary>Looks for the trailer; the stream's position is left anywhere.</summary>
    public static VmDescriptionSearchResult Locate(System.IO.Stream stream)
    {
        try
        {
            return LocateUnchecked(stream);
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or ArgumentException)
        {
            return new(null, new StreamAnalysisException($"cannot read the end of the stream to find the vmdesc: {ex.Message}", stream.Length, ex));
        }
    }

    private static VmDescriptionSearchResult LocateUnchecked(System.IO.Stream stream)
    {
        const int header = VmDescriptionTrailer.HeaderSize;
        long length = stream.Length;
        long lastNul = LastNulInTail(stream, length, header + MinJsonLength);
        byte[] chunk = new byte[ChunkSize + header + 1];

        // A trailer at p covers p .. length-1 and holds at least MinJsonLength JSON bytes.
        long high = length - header - MinJsonLength;
        while (high >= 0)
        {
            long low = Math.Max(0, high - ChunkSize + 1);
            Span<byte> window = chunk.AsSpan(0, (int)(high - low + 1 + header + 1));
            ReadAt(stream, low, window);
            for (long p = high; p >= low; p--)
            {
                int i = (int)(p - low);
                if (window[i] == 0 && lastNul < 0)
                {
                    lastNul = p;
                }

                if (lastNul >= 0 && p + header <= lastNul)
                {
                    return new(null, Diagnose(stream, length, lastNul));
                }

                if (window[i] == (byte)SectionType.VmDescription
                    && BinaryPrimitives.ReadUInt32BigEndian(window[(i + 1)..]) == length - p - header
                    && window[i + header] == JsonObjectStart)
                {
                    return Load(stream, p, length - p - header);
                }
            }

            high = low - 1;
        }

        return new(null, Diagnose(stream, length, lastNul));
    }

    private static long LastNulInTail(System.IO.Stream stream, long length, int count)
    {
        long start = Math.Max(0, length - count);
        Span<byte> tail = stackalloc byte[count];
        tail = tail[..(int)(length - start)];
        ReadAt(stream, start, tail);
        int last = tail.LastIndexOf((byte)0);
        return last < 0 ? -1 : start + last;
    }

    private static VmDescriptionSearchResult Load(System.IO.Stream stream, long offset, long jsonLength)
    {
        if (jsonLength > VmDescriptionTrailer.MaxJsonLength)
        {
            return new(null, new StreamAnalysisException(
                $"vmdesc JSON of {jsonLength} bytes is larger than the {VmDescriptionTrailer.MaxJsonLength} accepted", offset));
        }

        byte[] json = new byte[jsonLength];
        ReadAt(stream, offset + VmDescriptionTrailer.HeaderSize, json);
        try
        {
            return new(VmDescriptionTrailer.Parse(offset, json), null);
        }
        catch (StreamAnalysisException ex)
        {
            return new(null, ex);
        }
    }

    // No trailer matched: look next to the last NUL (the EOF byte, or the high byte of a short
    // length) for a VMDESCRIPTION header whose length does not fit, to say what is wrong with it.
    private static StreamAnalysisException Diagnose(System.IO.Stream stream, long length, long lastNul)
    {
        const int header = VmDescriptionTrailer.HeaderSize;
        var none = new StreamAnalysisException("no vmdesc trailer (0x06, be32 length, JSON) ends the stream", length);
        if (lastNul < 0)
        {
            return none;
        }

        long start = Math.Max(0, lastNul - (header - 1));
        long end = Math.Min(length, lastNul + 2 + header);
        Span<byte> near = stackalloc byte[2 * header + 2];
        near = near[..(int)(end - start)];
        ReadAt(stream, start, near);
        for (long h = Math.Min(lastNul + 1, length - 1); h >= start; h--)
        {
            int i = (int)(h - start);
            if (near[i] != (byte)SectionType.VmDescription)
            {
                continue;
            }

            long left = length - h - header;
            if (left < 0)
            {
                return new StreamAnalysisException("vmdesc trailer is cut off inside its 5-byte header", h);
            }

            if (left > 0 && i + header < near.Length && near[i + header] == JsonObjectStart)
            {
                uint claimed = BinaryPrimitives.ReadUInt32BigEndian(near[(i + 1)..]);
                string fit = claimed > left ? $"only {left} are left in the stream" : $"{left} follow it";
                return new StreamAnalysisException($"vmdesc length {claimed} does not match the stream: {fit}", h);
            }
        }

        return none;
    }

    private static void ReadAt(System.IO.Stream stream, long offset, Span<byte> destination)
    {
        stream.Position = offset;
        stream.ReadExactly(destination);
    }
}
