// The minivmm program: `minivmm run ...` (QEMU's options, QMP) and `minivmm demo`.
using MiniVmm.Host.CommandLine;

return await new MiniVmmCommandLine().InvokeAsync(args);
