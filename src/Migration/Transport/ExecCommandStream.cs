using System.Diagnostics;

namespace MiniVmm.Migration.Transport;

/// <summary>
/// An <c>exec:</c> transport: <c>sh -c COMMAND</c> whose standard input (outgoing) or standard
/// output (incoming) carries the stream, as QEMU does. Disposing closes our end and waits for
/// the command, so a <c>cat &gt; FILE</c> has finished writing when the migration completes; a
/// non-zero exit becomes an <see cref="IOException"/> naming the command.
/// </summary>
public sealed class ExecCommandStream : System.IO.Stream
{
    private readonly Process _process;
    private readonly System.IO.Stream _pipe;
    private readonly bool _outgoing;
    private int _disposed;

    private ExecCommandStream(Process process, bool outgoing)
    {
        _process = process;
        _outgoing = outgoing;
        _pipe = outgoing ? process.StandardInput.BaseStream : process.StandardOutput.BaseStream;
    }

    /// <summary>The command line given after <c>exec:</c>.</summary>
    public string Command => _process.StartInfo.ArgumentList[1];

    /// <summary>Starts <paramref name="command"/> with its standard input connected to the returned stream.</summary>
    public static ExecCommandStream StartOutgoing(string command) => new(Start(command, outgoing: true), outgoing: true);

    /// <summary>Starts <paramref name="command"/> with its standard output connected to the returned stream.</summary>
    public static ExecCommandStream StartIncoming(string command) => new(Start(command, outgoing: false), outgoing: false);

    private static Process Start(string command, bool outgoing)
    {
        var info = new ProcessStartInfo("/bin/sh")
        {
            RedirectStandardInput = outgoing,
            RedirectStandardOutput = !outgoing,
            UseShellExecute = false,
        };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(command);
        return Process.Start(info) ?? throw new IOException($"exec:{command}: could not start /bin/sh");
    }

    /// <inheritdoc />
    public override bool CanRead => !_outgoing;

    /// <inheritdoc />
    public override bool CanSeek => false;

    /// <inheritdoc />
    public override bool CanWrite => _outgoing;

    /// <inheritdoc />
    public override long Length => throw new NotSupportedException();

    /// <inheritdoc />
    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    /// <inheritdoc />
    public override int Read(byte[] buffer, int offset, int count) => _pipe.Read(buffer, offset, count);

    /// <inheritdoc />
    public override int Read(Span<byte> buffer) => _pipe.Read(buffer);

    /// <inheritdoc />
    public override void Write(byte[] buffer, int offset, int count) => _pipe.Write(buffer, offset, count);

    /// <inheritdoc />
    public override void Write(ReadOnlySpan<byte> buffer) => _pipe.Write(buffer);

    /// <inheritdoc />
    public override void Flush() => _pipe.Flush();

    /// <inheritdoc />
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    /// <inheritdoc />
    public override void SetLength(long value) => throw new NotSupportedException();

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (!disposing || Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            base.Dispose(disposing);
            return;
        }

        try
        {
            _pipe.Dispose();
            if (!_outgoing && !_process.HasExited)
            {
                // The loader stopped reading (done or failed): the command has nothing more to give.
                _process.Kill(entireProcessTree: true);
            }

            _process.WaitForExit();
            if (_outgoing && _process.ExitCode != 0)
            {
                throw new IOException($"exec:{Command} exited with status {_process.ExitCode}");
            }
        }
        finally
        {
            _process.Dispose();
            base.Dispose(disposing);
        }
    }
}
