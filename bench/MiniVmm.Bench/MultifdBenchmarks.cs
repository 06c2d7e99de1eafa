using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;
using MiniVmm.Migration.Multifd;
using MiniVmm.Migration.Ram;

namespace MiniVmm.Bench;

/// <summary>
/// Multifd packetising over 256 MiB of random guest RAM: the header codec alone, the source's
/// channel set sending every page (queue, packet, gathered send from guest RAM) to TCP loopback
/// peers that discard what they read, and the destination's channel threads reading packets from
/// memory straight into guest RAM. GB/s is 10^9 bytes of guest RAM per second.
/// </summary>
[MemoryDiagnoser]
[ThroughputColumn]
public class MultifdBenchmarks
{
    private const long Size = 256L << 20;
    private const int PageSize = MultifdWire.PageSize;
    private const int Packets = (int)(Size / PageSize / MultifdWire.MaxPagesPerPacket);

    private GuestMemory _memory = null!;
    private GuestMemory _target = null!;
    private readonly byte[] _header = new byte[MultifdWire.PacketHeaderSize];
    private readonly long[] _offsets = new long[MultifdWire.MaxPagesPerPacket];
    private byte[][] _channelStreams = [];

    /// <summary>Channels used by the send and receive benchmarks.</summary>
    [Params(1, 2, 4)]
    public int Channels { get; set; }

    /// <summary>Random RAM, the receive side's target RAM, and channel streams as a sender writes them.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _memory = GuestMemory.ForMachineNone(Size);
        _target = GuestMemory.ForMachineNone(Size);
        byte[] chunk = new byte[16 << 20];
        new Random(1).NextBytes(chunk);
        for (long at = 0; at < Size; at += chunk.Length)
        {
            _memory.Write(at, chunk);
        }

        for (int i = 0; i < _offsets.Length; i++)
        {
            _offsets[i] = (long)i * PageSize;
        }

        _channelStreams = BuildChannelStreams();
    }

    /// <summary>Releases the RAM.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _memory.Dispose();
        _target.Dispose();
    }

    /// <summary>Encodes the headers of every packet of 256 MiB (2048 packets of 128 pages).</summary>
    [Benchmark]
    [BytesPerOperation(Size)]
    public void EncodeHeaders()
    {
        RamBlock block = _memory.Blocks[0];
        for (int packet = 0; packet < Packets; packet++)
        {
            MultifdPacketHeader.Encode(_header, MultifdPacketFlags.None, (ulong)packet, block.IdStrMemory.Span, _offsets);
        }
    }

    /// <summary>Sends every page of 256 MiB over <see cref="Channels"/> loopback TCP connections, then syncs.</summary>
    [Benchmark]
    [BytesPerOperation(Size)]
    public long SendOverChannels()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(Channels);
        var drains = new List<Task>();
        long total;
        using (MultifdSender sender = MultifdSender.Open(
                   Channels,
                   _ =>
                   {
                       var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                       socket.Connect(listener.LocalEndPoint!);
                       Socket peer = listener.Accept();
                       drains.Add(Task.Run(() => Drain(peer)));
                       return new NetworkStream(socket, ownsSocket: true);
                   },
                   CancellationToken.None,
                   NullLogger.Instance))
        {
            RamBlock block = _memory.Blocks[0];
            for (long offset = 0; offset < Size; offset += PageSize)
            {
                sender.QueuePage(block, offset);
            }

            sender.Sync();
            total = sender.BytesQueued;
        }

        Task.WaitAll([.. drains]);
        return total;
    }

    /// <summary>Channel threads read <see cref="Channels"/> in-memory channel streams (256 MiB of pages in all) into guest RAM.</summary>
    [Benchmark]
    [BytesPerOperation(Size)]
    public long ReceiveIntoRam()
    {
        int next = 0;
        using MultifdReceiver receiver = MultifdReceiver.Accept(
            Channels, _ => new MemoryStream(_channelStreams[next++], writable: false), _target, CancellationToken.None, NullLogger.Instance);
        receiver.SyncMain();
        return receiver.PagesReceived;
    }

    private static void Drain(Socket peer)
    {
        using (peer)
        {
            byte[] sink = new byte[1 << 20];
            while (peer.Receive(sink) > 0)
            {
            }
        }
    }

    /// <summary>Per channel: its init packet, its share of 128-page packets round robin, and a SYNC packet.</summary>
    private byte[][] BuildChannelStreams()
    {
        var streams = new MemoryStream[Channels];
        byte[] init = new byte[MultifdWire.InitPacketSize];
        for (int c = 0; c < Channels; c++)
        {
            streams[c] = new MemoryStream();
            new MultifdInitPacket((byte)c).Encode(init);
            streams[c].Write(init);
        }

        RamBlock block = _memory.Blocks[0];
        long[] offsets = new long[MultifdWire.MaxPagesPerPacket];
        for (int packet = 0; packet < Packets; packet++)
        {
            for (int i = 0; i < offsets.Length; i++)
            {
                offsets[i] = ((long)packet * MultifdWire.MaxPagesPerPacket + i) * PageSize;
            }

            MemoryStream stream = streams[packet % Channels];
            MultifdPacketHeader.Encode(_header, MultifdPacketFlags.None, (ulong)packet, block.IdStrMemory.Span, offsets);
            stream.Write(_header);
            stream.Write(block.GetSpan(offsets[0], MultifdWire.MaxPagesPerPacket * PageSize));
        }

        for (int c = 0; c < Channels; c++)
        {
            MultifdPacketHeader.Encode(_header, MultifdPacketFlags.Sync, (ulong)(Packets + c), default, default);
            streams[c].Write(_header);
        }

        return streams.Select(s => s.ToArray()).ToArray();
    }
}
