// Compiles ConcordStablecoin.sol with solc-js (the npm `solc` package, the
// exact compiler version the pragma pins) into one JSON file: the ABI, the
// creation and the runtime bytecode, and the compiler and settings used, so
// that anyone can reproduce the deployed code from the source.
//   node chain/compile.cjs OUT.json   (NODE_PATH names the solc install)
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const source = fs.readFileSync(path.join(__dirname, "ConcordStablecoin.sol"), "utf8");
const settings = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: "cancun",
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "evm.methodIdentifiers"] } },
};
const input = { language: "Solidity", sources: { "ConcordStablecoin.sol": { content: source } }, settings };
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length > 0) process.exit(1);
const contract = output.contracts["ConcordStablecoin.sol"].ConcordStablecoin;
const out = {
  contract: "ConcordStablecoin",
  compiler: solc.version(),
  settings,
  abi: contract.abi,
  bytecode: "0x" + contract.evm.bytecode.object,
  deployed_bytecode: "0x" + contract.evm.deployedBytecode.object,
  selectors: contract.evm.methodIdentifiers,
};
fs.writeFileSync(process.argv[2], JSON.stringify(out, null, 2) + "\n");
console.error(`chain: compiled ConcordStablecoin with solc ${solc.version()}`);
