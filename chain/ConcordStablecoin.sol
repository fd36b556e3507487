// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// A stablecoin with freeze semantics like USDT's (TetherToken's BlackList):
/// the owner adds addresses to a blacklist and removes them; a blacklisted
/// address cannot send; `isBlackListed` is public; every change emits an
/// event. A frozen balance can be destroyed (`destroyBlackFunds`, as USDT
/// does on a forfeiture order) and the same amount issued to the address the
/// order names (`mint`). The issuer's `evm` book (docs/operations.md)
/// freezes, releases and seizes through it and every requester checks each
/// on the chain.
contract ConcordStablecoin {
    string public constant name = "Concord test dollar";
    string public constant symbol = "USDX";
    uint8 public constant decimals = 6;

    address public owner;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => bool) public isBlackListed;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event AddedBlackList(address indexed user);
    event RemovedBlackList(address indexed user);
    event DestroyedBlackFunds(address indexed blackListedUser, uint256 balance);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    error NotOwner(address caller);
    error SenderBlackListed(address sender);
    error AlreadyBlackListed(address user);
    error NotBlackListed(address user);
    error ZeroAddress();
    error InsufficientBalance(address sender, uint256 balance, uint256 needed);

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    constructor(address initialOwner) {
        if (initialOwner == address(0)) revert ZeroAddress();
        owner = initialOwner;
        emit OwnershipTransferred(address(0), initialOwner);
    }

    function transferOwnership(address newOwner) external onlyOwner {
        if (newOwner == address(0)) revert ZeroAddress();
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    /// USDT's name for the same question.
    function getBlackListStatus(address user) external view returns (bool) {
        return isBlackListed[user];
    }

    /// Freezes `user`: it can no longer send. Reverts for the zero address
    /// and for an address already listed, so a second freeze is never a
    /// second event.
    function addBlackList(address user) external onlyOwner {
        if (user == address(0)) revert ZeroAddress();
        if (isBlackListed[user]) revert AlreadyBlackListed(user);
        isBlackListed[user] = true;
        emit AddedBlackList(user);
    }

    /// Lifts the freeze of `user`. Reverts for an address not listed.
    function removeBlackList(address user) external onlyOwner {
        if (!isBlackListed[user]) revert NotBlackListed(user);
        isBlackListed[user] = false;
        emit RemovedBlackList(user);
    }

    /// Destroys the whole balance of a blacklisted `user` (USDT's
    /// `destroyBlackFunds`): the supply shrinks by it; the address stays
    /// listed, holding nothing. Reverts for an address not listed.
    function destroyBlackFunds(address user) external onlyOwner {
        if (!isBlackListed[user]) revert NotBlackListed(user);
        uint256 dirtyFunds = balanceOf[user];
        balanceOf[user] = 0;
        totalSupply -= dirtyFunds;
        emit DestroyedBlackFunds(user, dirtyFunds);
    }

    /// New tokens to `to` (USDT's `issue`).
    function mint(address to, uint256 amount) external onlyOwner {
        if (to == address(0)) revert ZeroAddress();
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        if (isBlackListed[msg.sender]) revert SenderBlackListed(msg.sender);
        if (to == address(0)) revert ZeroAddress();
        uint256 balance = balanceOf[msg.sender];
        if (balance < amount) revert InsufficientBalance(msg.sender, balance, amount);
        unchecked {
            balanceOf[msg.sender] = balance - amount;
        }
        balanceOf[to] += amount;
        emit Transfer(msg.sender, to, amount);
        return true;
    }
}
